"""Run the agent as a Windows service, and install/uninstall that service.

Only the service framework part needs pywin32 and Windows; it is imported lazily so this module
imports (and ``soc agent install`` can explain itself) everywhere. It cannot be exercised on Linux.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Any

SERVICE_NAME = "SocAgent"
SERVICE_DISPLAY_NAME = "SOC Agent"
SERVICE_DESCRIPTION = "Ships Windows event logs and host inventory to the SOC collector."


class ServiceError(RuntimeError):
    """The service cannot be installed or removed here."""


def _require_windows() -> None:
    if sys.platform != "win32":
        raise ServiceError("the Windows service exists only on Windows")
    try:
        import win32serviceutil  # noqa: F401
    except ImportError as exc:
        raise ServiceError("pywin32 is not installed (pip install soc-platform[windows])") from exc


def _service_class() -> type[Any]:
    """Build the ServiceFramework subclass (only possible where pywin32 exists)."""
    import servicemanager
    import win32service
    import win32serviceutil

    class SocAgentService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = SERVICE_DISPLAY_NAME
        _svc_description_ = SERVICE_DESCRIPTION

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self._stop = threading.Event()

        def SvcStop(self) -> None:  # pywin32 names these
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self._stop.set()

        def SvcDoRun(self) -> None:
            from agent.config import AgentConfig
            from agent.runtime import Agent
            from soc_common.config import load_config

            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
            config_path = config_file()
            config = load_config(AgentConfig, config_path if config_path.exists() else None, role="agent")
            Agent(config).run(self._stop)
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} stopped")

    return SocAgentService


def config_file() -> Path:
    """``%ProgramData%\\SOC\\agent.toml``: where the installer puts the agent configuration."""
    import os

    return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "SOC" / "agent.toml"


def install_service(*, start: bool = True) -> None:
    """Register the agent as an automatic-start service (needs an elevated prompt)."""
    _require_windows()
    import win32service
    import win32serviceutil

    # The SCM runs ``python.exe -m agent.windows.service``, whose main() hosts the service class:
    # no pythonservice.exe copy or registry class path is needed, and a venv's python works.
    win32serviceutil.InstallService(
        f"{__name__}.SocAgentService",
        SERVICE_NAME,
        SERVICE_DISPLAY_NAME,
        startType=win32service.SERVICE_AUTO_START,
        exeName=sys.executable,
        exeArgs=f"-m {__name__}",
        description=SERVICE_DESCRIPTION,
    )
    if start:
        win32serviceutil.StartService(SERVICE_NAME)


def uninstall_service() -> None:
    """Stop (if running) and remove the service."""
    _require_windows()
    import win32serviceutil

    with contextlib.suppress(Exception):  # not running is fine
        win32serviceutil.StopService(SERVICE_NAME)
    win32serviceutil.RemoveService(SERVICE_NAME)


def main() -> None:
    """Entry point the Service Control Manager starts (``python -m agent.windows.service``)."""
    _require_windows()
    import servicemanager

    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(_service_class())
    servicemanager.StartServiceCtrlDispatcher()


if __name__ == "__main__":
    main()
