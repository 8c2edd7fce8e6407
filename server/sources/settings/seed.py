"""The modules a new server starts with: a small media-control installation."""

from __future__ import annotations

from typing import Any

SEED_MODULES: dict[str, dict[str, Any]] = {
    "setup": {
        "siteName": "Exhibition Hall A",
        "timezone": "Europe/Berlin",
        "language": "en",
        "operatorContact": "facility@example.org",
        "autoStartShow": True,
    },
    "displays": {
        "outputs": [
            {"id": "proj-1", "model": "Epson EB-PU2010", "input": "HDMI1", "brightness": 80},
            {"id": "proj-2", "model": "Epson EB-PU2010", "input": "HDMI1", "brightness": 80},
            {"id": "lobby-tv", "model": "LG 55UH5F", "input": "HDMI2", "brightness": 65},
        ],
        "powerOnDelaySeconds": 20,
        "blankOnIdle": True,
    },
    "audio": {
        "masterVolume": -12.5,
        "zones": [
            {"name": "Hall", "volume": -10, "muted": False},
            {"name": "Foyer", "volume": -18, "muted": False},
            {"name": "Backstage", "volume": -30, "muted": True},
        ],
        "dsp": {"model": "Biamp TesiraFORTE", "host": "10.0.20.15", "port": 23},
    },
    "schedules": {
        "enabled": True,
        "entries": [
            {"name": "Opening", "cron": "0 9 * * 1-6", "action": "show.start"},
            {"name": "Closing", "cron": "0 18 * * 1-6", "action": "show.stop"},
            {"name": "Weekly reboot", "cron": "30 3 * * 0", "action": "system.reboot"},
        ],
    },
    "network": {
        "hostname": "media-ctrl-01",
        "dhcp": False,
        "address": "10.0.20.10/24",
        "gateway": "10.0.20.1",
        "dns": ["10.0.20.1", "9.9.9.9"],
        "ntp": ["pool.ntp.org"],
    },
    "lighting": {
        "protocol": "Art-Net",
        "universe": 1,
        "scenes": {"welcome": [255, 200, 120], "show": [40, 40, 60], "cleaning": [255, 255, 255]},
    },
    "users": {
        "sessionTimeoutMinutes": 30,
        "roles": {"technician": ["show", "audio", "displays"], "guide": ["show"]},
    },
}
