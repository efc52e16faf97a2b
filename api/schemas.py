"""Pydantic request and response models (inputs forbid extra fields; outputs list theirs)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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


class IngestRequest(_Input):
    blocks: Annotated[list[BlockIn], Field(min_length=1)]


class BlockAck(BaseModel):
    stream: str
    seq: int
    n_samples: int
    t0_ns: int


class IngestResponse(BaseModel):
    blocks: list[BlockAck]
    samples: int


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
