pytest_plugins = ["pricewire_common.testing.pytest_plugin"]
