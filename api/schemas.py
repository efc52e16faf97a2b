"""Pydantic request and response models (inputs forbid extra fields; outputs list theirs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

# Known collector profiles (names of collector.devices.PROFILES; api must not import collector).
DEVICE_PROFILES = (
    "polar_pmd",
    "metawear",
    "microbit",
    "infinitime",
    "thingy52",
    "witmotion",
    "movesense",
)
INT64_MAX = 2**63 - 1


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class PatientCreate(_Input):
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class PatientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    timezone: str


class DeviceCreate(_Input):
    profile: str
    name: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in DEVICE_PROFILES:
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(DEVICE_PROFILES)}")
        return value


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    profile: str
    name: str


class DeviceStatusRead(DeviceRead):
    """A device with its collector's latest reported status (all null when never reported)."""

    last_seen: str | None = Field(description="ISO-8601 UTC time of the latest status report.")
    link: str | None = Field(description="connected, connecting or disconnected.")
    battery_pct: int | None
    backlog_blocks: int | None = Field(description="Blocks decoded but not uploaded yet.")
    backlog_samples: int | None
    backlog_oldest: str | None = Field(description="ISO-8601 UTC start of the oldest block not uploaded.")
    decoded_until: str | None = Field(description="ISO-8601 UTC end of the last decoded sample.")


class DeviceCreated(DeviceRead):
    token: str = Field(description="Device bearer token; shown only in this response.")


class BlockIn(_Input):
    stream: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    seq: Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]
    t0_ns: Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]
    fs_hz: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    n_samples: Annotated[int, Field(ge=1, strict=True)]
    dtype: str
    data: str

    @field_validator("dtype")
    @classmethod
    def _float32(cls, value: str) -> str:
        if value != "float32":
            raise ValueError(f"dtype must be 'float32', got {value!r}")
        return value


NsTime = Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]
# Event ids are client-made UUID4 hex (architecture.md, issue 4 contract).
EventId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
GapCause = Literal["ble_disconnect", "device_drop", "collector_down"]
MarkSource = Literal["cli", "button"]


class GapEventIn(_Input):
    """Missing data the collector knows the cause of: ``[start_ns, end_ns)`` of one stream."""

    id: EventId
    kind: Literal["gap"]
    stream: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    start_ns: NsTime
    end_ns: NsTime
    cause: GapCause

    @model_validator(mode="after")
    def _ordered(self) -> GapEventIn:
        if self.end_ns <= self.start_ns:
            raise ValueError(f"end_ns ({self.end_ns}) must be after start_ns ({self.start_ns})")
        return self


class TaskStartIn(_Input):
    """The patient starts a task (``otmon task start LABEL`` or a button press)."""

    id: EventId
    kind: Literal["task_start"]
    at_ns: NsTime
    label: Annotated[str, Field(min_length=1, max_length=64, pattern=r"\S")]
    source: MarkSource


class TaskStopIn(_Input):
    """The patient stops the open task, with an optional Borg 6-20 rating and note."""

    id: EventId
    kind: Literal["task_stop"]
    at_ns: NsTime
    borg: Annotated[int, Field(ge=6, le=20, strict=True)] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None
    source: MarkSource


EventIn = Annotated[GapEventIn | TaskStartIn | TaskStopIn, Field(discriminator="kind")]


class StatusIn(_Input):
    """The collector's state at ``at_ns`` (not idempotent: the latest ``at_ns`` wins)."""

    at_ns: NsTime
    link: Literal["connected", "connecting", "disconnected"]
    battery_pct: Annotated[int, Field(ge=0, le=100, strict=True)] | None = None
    backlog_blocks: Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)] | None = None
    backlog_samples: Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)] | None = None
    backlog_oldest_t0_ns: NsTime | None = None
    decoded_until_ns: NsTime | None = None


class IngestRequest(_Input):
    blocks: list[BlockIn] = Field(default_factory=list)
    events: list[EventIn] = Field(default_factory=list)
    status: StatusIn | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> IngestRequest:
        if not self.blocks and not self.events and self.status is None:
            raise ValueError("nothing to ingest: give at least one of blocks, events or status")
        return self


class BlockAck(BaseModel):
    stream: str
    seq: int
    n_samples: int
    t0_ns: int


class EventAck(BaseModel):
    id: str


class IngestResponse(BaseModel):
    blocks: list[BlockAck]
    samples: int
    events: list[EventAck]


class GapRead(BaseModel):
    """A gap of a day or session (analysis.pipeline.gap_dicts)."""

    start: str
    end: str
    cause: str
    duration_s: float


class DayRead(BaseModel):
    """One calendar day in the patient's time zone (analysis.pipeline.summarise_days)."""

    date: str
    samples: int
    recorded_min: float
    wear_min: float
    nonwear_min: float
    sedentary_min: float
    light_min: float
    moderate_min: float
    vigorous_min: float
    mean_enmo_mg: float | None
    cutpoints: Any
    gaps: list[GapRead]


class Health(BaseModel):
    status: str


class SessionLabelIn(_Input):
    """A therapist's label: the patient did ``activity`` from ``start`` to ``end`` (aware times)."""

    start: AwareDatetime
    end: AwareDatetime
    activity: Annotated[str, Field(min_length=1, max_length=64, pattern=r"\S")]


class SessionLabelRead(BaseModel):
    """A stored labelled session."""

    id: int
    start: str
    end: str
    activity: str
