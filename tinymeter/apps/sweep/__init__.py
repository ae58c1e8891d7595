"""The sweep / NAS application: search space, resumable driver, executors, its database
(``db``) and its plots (``plots``)."""
