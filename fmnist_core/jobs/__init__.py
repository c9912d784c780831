"""Jobs and who owns them: the app's bounded first-come queue (status snapshots, cancel, crash markers) and the
classroom rules for one server shared by a class.

May import: the shared leaves (errors, config, paths, machine, files, display) only.
"""
