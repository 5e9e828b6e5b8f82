"""Device profiles (`devices.yaml`): the memory bandwidth, compute and RAM budget a prediction needs."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slmkit.runtime.errors import SlmkitError


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    label: str
    kind: str
    peak_bandwidth_gbs: float = Field(gt=0)
    bandwidth_fraction: float = Field(gt=0, le=1)
    peak_gflops: float = Field(gt=0)
    compute_fraction: float = Field(gt=0, le=1)
    ram_gb: float = Field(gt=0)
    usable_ram_gb: float = Field(gt=0)
    sustained_factor: float = Field(gt=0, le=1)
    network_rtt_ms: float = Field(ge=0)
    sources: list[str] = Field(min_length=1)

    @property
    def bandwidth_gbs(self) -> float:
        """What a runtime can actually stream from memory (comparable to the host's measured copy rate)."""
        return self.peak_bandwidth_gbs * self.bandwidth_fraction

    @property
    def gflops(self) -> float:
        return self.peak_gflops * self.compute_fraction


def _parse(text: str, origin: str) -> dict[str, DeviceProfile]:
    try:
        data = yaml.safe_load(text)
        entries = data["devices"]
        return {name: DeviceProfile(name=name, **values) for name, values in entries.items()}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise SlmkitError(f"{origin} is not a device-profile file ({exc}).",
                          hint="It needs a `devices:` mapping of name -> profile, like the built-in devices.yaml.") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SlmkitError(f"{origin}: device profile field {where}: {first['msg']}.") from None


def builtin_devices() -> dict[str, DeviceProfile]:
    """The device profiles shipped in devices.yaml, by name."""
    return _parse(resources.files(__package__).joinpath("devices.yaml").read_text(encoding="utf-8"), "devices.yaml")


def load_devices(extra: Path | None = None) -> dict[str, DeviceProfile]:
    """The built-in profiles, plus (overriding by name) those of an extra YAML file."""
    devices = builtin_devices()
    if extra is not None:
        if not Path(extra).is_file():
            raise SlmkitError(f"No device-profile file at {extra}.")
        devices.update(_parse(Path(extra).read_text(encoding="utf-8"), str(extra)))
    return devices


def get_device(name: str, devices: dict[str, DeviceProfile]) -> DeviceProfile:
    """The profile `name`. Raises SlmkitError suggesting close names and listing the known ones."""
    if name in devices:
        return devices[name]
    close = difflib.get_close_matches(name, list(devices), n=3, cutoff=0.4)
    hint = f"Did you mean {', '.join(close)}? " if close else ""
    raise SlmkitError(f"Unknown device {name!r}.", hint=f"{hint}Known devices: {', '.join(sorted(devices))}.")
