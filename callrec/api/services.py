"""What the API's routes need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from quart import current_app
from temporalio.client import Client

from callrec.api.bruteforce import Throttle
from callrec.domain.settings import Settings
from callrec.recordings.calls import Calls
from callrec.recordings.service import RecordingsService
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    temporal: Client
    throttle: Throttle = field(init=False)
    recordings: RecordingsService = field(init=False)
    calls: Calls = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = Throttle(self.settings.bruteforce_max_failures, self.settings.bruteforce_window_s)
        self.recordings = RecordingsService(self.settings, self.catalog, self.store, self.temporal)
        self.calls = Calls(self.recordings)


def services() -> Services:
    found: Services = current_app.extensions["callrec"]
    return found
