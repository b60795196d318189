# The mail catcher's own first migration, so the next one has something to follow.
import importlib

Migration = importlib.import_module("apps.mailcatcher.migrations.0001_initial").Migration
