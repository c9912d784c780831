"""The training engine: every training the app starts, and every run of a sweep, is a task on Dask distributed.

`cluster` holds the Dask client (a LocalCluster of one low-priority worker process, started at the first training,
or the cluster at FMNIST_SCHEDULER); `task` is the one function a worker runs to train (it reports progress on an
event topic, polls a stop flag and returns the saved model's bytes and record); `remote` runs one app training on
it and saves the model into the server's cache. May import the shared leaves and jobs, data, models, evaluate,
store and training; race, sweep, explain, report and the CLI may import it.
"""
