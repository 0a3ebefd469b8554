"""The recordings service: the one place that starts, stops, finds, lists and deletes recordings.

Every front door (Meet REST, Talk OCS, the recorder back end, the LiveKit webhook, the ops CLI) translates
its protocol into calls of `RecordingsService` and its errors (`callrec.recordings.errors`) back into its own.
"""
