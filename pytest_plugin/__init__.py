"""The wftest pytest plugin (entry point ``pytest11: wftest``); see :mod:`pytest_plugin.plugin`."""
