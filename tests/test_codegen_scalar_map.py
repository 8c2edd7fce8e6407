"""The codegen scalar map of web/codegen.ts (docs/api/building-a-ui.md): graphql-codegen's client
preset with it types DateTime, ByteCount, JSON and Upload as documented, and `tsc --strict`
accepts code using them (tests/codegen/check.ts). A wrong map or a type error fails the check."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web_page import ROOT, WEB, ensure_installed

pytestmark = pytest.mark.slow

CHECK = ROOT / "tests" / "codegen"
TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "bundler",
        "lib": ["ES2022", "DOM"],
        "skipLibCheck": True,
    },
    "files": ["check.ts"],
}


@pytest.fixture(scope="module")
def node() -> None:
    if shutil.which("node") is None or shutil.which("npx") is None:
        pytest.skip("Node.js/npm are missing: the codegen scalar map is checked where they are (install Node.js 20+)")
    ensure_installed()


@pytest.fixture
def workdir(node: None) -> Iterator[Path]:
    """A folder inside web/node_modules, so that the generated types resolve web's packages."""
    cache = WEB / "node_modules" / ".cache"
    cache.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="codegen-check-", dir=cache))
    shutil.copy(CHECK / "operations.graphql", folder)
    shutil.copy(CHECK / "check.ts", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def check(folder: Path, scalars: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Codegen with web/codegen.ts's config (its scalar map, or `scalars` instead), then tsc --strict."""
    override = json.dumps(scalars) if scalars is not None else "scalars"
    (folder / "codegen.ts").write_text(
        f"""import config, {{ scalars }} from {json.dumps(str(WEB / "codegen.ts"))};
const page = (config.generates as Record<string, any>)["src/gql/"];
export default {{
  schema: {json.dumps(str(ROOT / "schema.graphql"))},
  documents: [{json.dumps(str(folder / "operations.graphql"))}],
  generates: {{ {json.dumps(str(folder / "gql") + "/")}: {{ ...page, config: {{ ...page.config, scalars: {override} }} }} }},
}};
"""
    )
    generated = subprocess.run(
        ["npx", "graphql-codegen", "--config", str(folder / "codegen.ts")],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if generated.returncode != 0:
        return generated
    (folder / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    return subprocess.run(["npx", "tsc", "-p", str(folder)], cwd=WEB, capture_output=True, text=True, timeout=300)


def test_the_documented_scalar_map_gives_the_types_tsc_strict_accepts(workdir: Path) -> None:
    result = check(workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sizeBytes: number" in (workdir / "gql" / "graphql.ts").read_text()


DOCUMENTED = {"DateTime": "string", "ByteCount": "number", "JSON": "unknown", "Upload": "File"}


@pytest.mark.parametrize(
    ("scalars", "says"),
    [
        pytest.param({**DOCUMENTED, "DateTime": "Date"}, "check.ts", id="DateTime as Date (the server sends a string)"),
        pytest.param({**DOCUMENTED, "JSON": "any"}, "check.ts", id="JSON as any"),
        pytest.param({}, "Unknown scalar type", id="no map (codegen's strictScalars refuses an unmapped scalar)"),
    ],
)
def test_a_wrong_scalar_map_fails_the_check(workdir: Path, scalars: dict[str, str], says: str) -> None:
    result = check(workdir, scalars)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and says in output, output


def test_a_type_error_fails_the_check(workdir: Path) -> None:
    with (workdir / "check.ts").open("a") as source:
        source.write("\nexport const wrong: number = ({} as ScalarMapCheckQuery)['storage']['storedBytes'].length;\n")
    result = check(workdir)
    assert result.returncode != 0 and "check.ts" in result.stdout + result.stderr, result.stdout + result.stderr
