"""Loaders: each turns one kind of input into :class:`calaudit.Predictions`."""
