"""`hivesync lsp` driven by pytest-lsp, a third-party LSP client (pygls + lsprotocol).

Initialize, definition, references and rename on a two-language project (Python and
TypeScript), as an editor would ask them. The binary is `$HIVESYNC_BIN`, or
`target/debug/hivesync` of this repository.

Run: python3 -m venv .venv && .venv/bin/pip install -r editors/pytest-lsp/requirements.txt
     && .venv/bin/pytest editors/pytest-lsp
"""

import os
import pathlib
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = pathlib.Path(__file__).resolve().parents[2]
HIVESYNC = os.environ.get("HIVESYNC_BIN") or str(REPO / "target" / "debug" / "hivesync")
HOME = tempfile.mkdtemp(prefix="hivesync-pytest-lsp-")
ROOT = pathlib.Path(HOME) / "proj"

FILES = {
    "pkg/__init__.py": "",
    "pkg/shapes.py": "def make_shape(width, height):\n    return width * height\n",
    "app.py": "from pkg.shapes import make_shape\n\nprint(make_shape(2, 3))\n",
    "web/geometry.ts": "export function area(w: number, h: number): number {\n  return w * h;\n}\n",
    "web/main.ts": "import { area } from \"./geometry\";\n\nconsole.log(area(2, 3));\n",
}

for rel, text in FILES.items():
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)

ENV = {
    "HOME": HOME,
    "XDG_CONFIG_HOME": str(pathlib.Path(HOME) / ".config"),
    "PATH": os.environ.get("PATH", ""),
}


def uri(rel: str) -> str:
    return (ROOT / rel).as_uri()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[HIVESYNC, "lsp"], server_env=ENV))
async def client(lsp_client: LanguageClient):
    # The client claims VS Code's capabilities, so it answers what VS Code answers: the
    # dynamic registration of file watchers, and the refresh requests the server sends when
    # indexing ends or files change (pytest-lsp fails a test on any request left unhandled).
    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams):
        return None

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params: None):
        return None

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_hint_refresh(params: None):
        return None

    lsp_client.initialize_result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=ROOT.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=ROOT.as_uri(), name="proj")],
        )
    )
    yield
    await lsp_client.shutdown_session()


def pos(rel: str, line: int, character: int):
    return dict(
        text_document=types.TextDocumentIdentifier(uri=uri(rel)),
        position=types.Position(line=line, character=character),
    )


async def open_doc(client: LanguageClient, rel: str, language: str):
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(rel), language_id=language, version=1, text=FILES[rel]
            )
        )
    )


async def test_initialize_reports_capabilities(client: LanguageClient):
    result = client.initialize_result
    assert result.server_info.name == "hivesync"
    caps = result.capabilities
    assert caps.definition_provider
    assert caps.references_provider
    assert caps.rename_provider


@pytest.mark.parametrize(
    "rel,language,line,character,target,target_line",
    [
        ("app.py", "python", 2, 8, "pkg/shapes.py", 0),
        ("web/main.ts", "typescript", 2, 13, "web/geometry.ts", 0),
    ],
)
async def test_definition(client, rel, language, line, character, target, target_line):
    await open_doc(client, rel, language)
    result = await client.text_document_definition_async(
        types.DefinitionParams(**pos(rel, line, character))
    )
    assert isinstance(result, list) and len(result) == 1, result
    assert result[0].uri == uri(target)
    assert result[0].range.start.line == target_line


@pytest.mark.parametrize(
    "rel,language,line,character,expected",
    [
        ("pkg/shapes.py", "python", 0, 5, {("app.py", 0), ("app.py", 2), ("pkg/shapes.py", 0)}),
        ("web/geometry.ts", "typescript", 0, 17, {("web/main.ts", 0), ("web/main.ts", 2), ("web/geometry.ts", 0)}),
    ],
)
async def test_references(client, rel, language, line, character, expected):
    await open_doc(client, rel, language)
    result = await client.text_document_references_async(
        types.ReferenceParams(
            context=types.ReferenceContext(include_declaration=True), **pos(rel, line, character)
        )
    )
    found = {(r.uri[len(ROOT.as_uri()) + 1 :], r.range.start.line) for r in result}
    assert found == expected


@pytest.mark.parametrize(
    "rel,language,line,character,new,files",
    [
        ("app.py", "python", 2, 8, "build_shape", {"app.py", "pkg/shapes.py"}),
        ("web/main.ts", "typescript", 2, 13, "surface", {"web/main.ts", "web/geometry.ts"}),
    ],
)
async def test_rename(client, rel, language, line, character, new, files):
    await open_doc(client, rel, language)
    edit = await client.text_document_rename_async(
        types.RenameParams(new_name=new, **pos(rel, line, character))
    )
    assert edit is not None
    if edit.changes:
        edited = {u[len(ROOT.as_uri()) + 1 :] for u in edit.changes}
        texts = {e.new_text for edits in edit.changes.values() for e in edits}
    else:
        edited = {d.text_document.uri[len(ROOT.as_uri()) + 1 :] for d in edit.document_changes}
        texts = {e.new_text for d in edit.document_changes for e in d.edits}
    assert edited == files
    assert texts == {new}


async def test_rename_refusal_is_an_error(client):
    await open_doc(client, "app.py", "python")
    with pytest.raises(Exception, match="keyword"):
        await client.text_document_rename_async(
            types.RenameParams(new_name="class", **pos("app.py", 2, 8))
        )
