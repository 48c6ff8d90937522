"""Widgets: one per module. They render what the Store holds; they do no I/O and no parsing."""
