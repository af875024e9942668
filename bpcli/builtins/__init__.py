"""The built-in parts of bpcli, registered through the plugin hooks like any third party's."""
