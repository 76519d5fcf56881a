"""Widgets and formatting shared by the screens."""
