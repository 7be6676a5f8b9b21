"""Push the generated dashboards to a Grafana instance (HTTP API, via grafana-client).

    slamon grafana push --url https://grafana.example.com --token-file /run/secrets/grafana_token DIR

Creates the folder when missing (by uid, so renaming it in Grafana does not break pushes) and creates or
updates every DIR/*.json dashboard in it (`overwrite`: the generated file is the source of truth).
The token is a Grafana service-account token, read from a file, never from the command line.
Provisioning from files (deploy/grafana/provisioning) is the alternative when Grafana runs next to them.
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER_UID = "slamon"
FOLDER_TITLE = "slamon"


def read_token(path: str | Path) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path}: empty token file")
    return token


def push(url: str, token: str, directory: str | Path, *, folder_uid: str = FOLDER_UID,
         folder_title: str = FOLDER_TITLE, api=None, message: str = "slamon: generated dashboards") -> list[str]:
    """Create/update the dashboards of `directory` in the folder; returns the dashboard URLs Grafana reports."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{directory}: no dashboard JSON files")
    api = api if api is not None else GrafanaApi.from_url(url, credential=token)
    try:
        api.folder.get_folder(folder_uid)
    except GrafanaClientError as err:
        if getattr(err, "status_code", None) != 404:
            raise
        api.folder.create_folder(folder_title, uid=folder_uid)
    urls = []
    for path in files:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        dashboard.pop("id", None)  # Grafana assigns ids; the uid identifies the dashboard
        result = api.dashboard.update_dashboard({"dashboard": dashboard, "folderUid": folder_uid,
                                                 "overwrite": True, "message": message})
        urls.append((result or {}).get("url", dashboard.get("uid")))
    return urls
