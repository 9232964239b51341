"""The documentation site (``bin/docs``, docs/, mkdocs.yml).

* it builds with ``--strict`` (no broken link or anchor, every generated page there),
  loading nothing from a network, and renders in Chromium from ``file://`` with no
  console error and no request leaving the machine;
* the reference pages generated from the code name every command, action, setting,
  expectation type and stage the code has;
* every command the pages show exists with its command, action and options, parsed by
  moulin's own argparse parsers (a wrong flag fails here), and the cheap ones run for real;
* the Guides section picks up any page under docs/guides/;
* Great Expectations' Data Docs pages load no style or script from a network.

The first hour's query blocks run in CI against the main command's output
(``bin/docs run-tutorial first-hour`` in ``.ci/run``), not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "docs" / "hooks"
sys.path.insert(0, str(HOOKS))

from moulin_docs import checks, guides, pages, reference, settings_ref, tutorial  # noqa: E402

from moulin.quality.data_docs import remote_references  # noqa: E402

#: Pages opened in the browser: the home, a tutorial, a generated reference page.
BROWSED = ("index.html", "tutorials/first-hour.html", "reference/cli.html")
#: moulin commands cheap enough to run for real from a fresh home (seconds, no Spark).
CHEAP_ACTIONS = {("settings",), ("jobs", "list"), ("privacy", "key"), ("source", "list")}


def _cheap(argv: list[str]) -> bool:
    """Whether ``moulin <argv>`` costs only seconds from a fresh home."""
    return any(tuple(argv[: len(a)]) == a for a in CHEAP_ACTIONS) or (
        argv[:1] == ["sql"] and "--tables" in argv
    )


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(HOOKS), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "NO_MKDOCS_2_WARNING": "1", **extra}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once as ``bin/docs`` builds it (``mkdocs build --strict``)."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "moulin_docs", "build", "--site-dir", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "docs: site built in" in done.stdout
    return out


def test_site_builds_strict_with_every_page(site: Path) -> None:
    for path in reference.pages():
        assert (site / path).with_suffix(".html").is_file(), path
    for page in checks.pages():
        rel = page.relative_to(ROOT / "docs").with_suffix(".html")
        assert (site / rel).is_file(), rel


def test_site_loads_nothing_from_a_network(site: Path) -> None:
    remote = {
        str(p.relative_to(site)): remote_references(p.read_text(errors="replace"))
        for p in site.rglob("*")
        if p.suffix in (".html", ".css")
    }
    assert {k: v for k, v in remote.items() if v} == {}
    assert "fonts.googleapis" not in (site / "index.html").read_text()


def test_generated_reference_names_everything_the_code_has(site: Path) -> None:
    from moulin_docs.cli_ref import walk

    from moulin.cli import build_parser
    from moulin.expectations import EXPECTATION_TYPES
    from moulin.jobs.registry import stages

    cli = (site / "reference" / "cli.html").read_text()
    for words, parser in walk(build_parser()):
        if words:
            assert f'id="moulin-{"-".join(words)}"' in cli, words
        for action in parser._actions:
            for option in action.option_strings:
                assert option in cli, (words, option)
    settings = (site / "reference" / "settings.html").read_text()
    for variable in settings_ref.settings_variables():
        assert variable in settings, variable
    text = (site / "reference" / "expectations.html").read_text()
    assert all(f"<code>{name}</code>" in text for name in EXPECTATION_TYPES)
    text = (site / "reference" / "stages.html").read_text()
    assert all(f'id="{name}"' in text for name in stages())
    assert "DeltaTableStore" in (site / "reference" / "api" / "moulin.delta.store.html").read_text()


def test_the_delta_page_names_every_feature_moulin_supports() -> None:
    from moulin.delta.log import SUPPORTED_READER_FEATURES, SUPPORTED_WRITER_FEATURES

    text = (ROOT / "docs" / "concepts" / "delta.md").read_text()
    assert [
        f for f in sorted(SUPPORTED_READER_FEATURES | SUPPORTED_WRITER_FEATURES) if f"`{f}`" not in text
    ] == []


def test_every_command_of_the_pages_exists_with_its_options() -> None:
    problems = checks.check_pages([ROOT / "README.md", *checks.pages()])
    assert [str(p) for p in problems] == []


def test_a_wrong_command_on_a_page_is_found(tmp_path: Path) -> None:
    page = tmp_path / "wrong.md"
    page.write_text(
        "```bash\n"
        ".venv/bin/moulin sql --tables --frmat csv\n"
        "bin/run-flights --sample 300 --mnths 1\n"
        ".venv/bin/moulin table shw bronze/flights\n"
        "bin/docs run-tutorial first-hour\n"
        "benchmarks/no_such_script.py\n"
        "frobnicate --now\n"
        "```\n"
        "```python\nprint(\n```\n"
        "```yaml\na: [b\n```\n"
    )  # fmt: skip
    found = [str(p) for p in checks.check_pages([page])]
    assert len(found) == 8, found
    assert "--frmat" in found[0] and "--mnths" in found[1] and "shw" in found[2] and "--home" in found[3]


def test_commands_are_split_as_a_shell_reads_them(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "<!-- tutorial: run -->\n```bash\n"
        "export MOULIN_CONTRACTS_DIR=~/c   # a comment\n"
        "MOULIN_HOME=/x .venv/bin/moulin source infer /d/a.csv --name orders \\\n    --out $MOULIN_CONTRACTS_DIR\n"
        'echo a@b.org | .venv/bin/moulin privacy request && .venv/bin/moulin sql "SELECT 1 > 0" > out.csv 2>&1\n'
        "```\n"
    )  # fmt: skip
    (block,) = pages.blocks(page)
    assert block.marked and block.lang == "bash"
    assert [c.words for c in pages.commands(block)] == [
        ("export", "MOULIN_CONTRACTS_DIR=~/c"),
        (
            ".venv/bin/moulin",
            "source",
            "infer",
            "/d/a.csv",
            "--name",
            "orders",
            "--out",
            "$MOULIN_CONTRACTS_DIR",
        ),
        ("echo", "a@b.org"),
        (".venv/bin/moulin", "privacy", "request"),
        (".venv/bin/moulin", "sql", "SELECT 1 > 0"),
    ]


def test_the_first_hour_marks_its_queries_for_ci() -> None:
    found = tutorial.runnable(tutorial.page_of("first-hour"))
    bodies = "\n".join(b.body for b in found)
    assert {b.lang for b in found} == {"bash", "python"}
    for reader in (
        "moulin sql",
        "to_pandas",
        "pl.read_delta",
        "duckdb.sql",
        "build_spark_session",
        "query_pandas",
    ):
        assert reader in bodies, reader
    with pytest.raises(tutorial.TutorialError, match="no tutorial 'nope'"):
        tutorial.page_of("nope")
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r'bin/docs run-tutorial first-hour --home "\$home"', ci)


def test_the_cheap_tutorial_commands_run(tmp_path: Path) -> None:
    """Commands of the tutorials that cost seconds, run for real from a fresh home."""
    moulin = str(Path(sys.executable).with_name("moulin"))
    env = _env(MOULIN_HOME=str(tmp_path), MOULIN_PROFILE="local")
    ran = []
    for page in sorted((ROOT / "docs" / "tutorials").glob("*.md")):
        for block in pages.blocks(page):
            for command in pages.commands(block):
                program, *argv = command.words
                if program not in (".venv/bin/moulin", "moulin") or not _cheap(argv):
                    continue
                done = subprocess.run(
                    [moulin, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
                )
                assert done.returncode == 0, (command.text, done.stdout[-2000:], done.stderr[-2000:])
                ran.append(tuple(argv))
    assert len(ran) >= 3, ran


def test_guides_are_picked_up_from_their_folder(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "index.md").write_text("# Guides\n")
    (tmp_path / "guides" / "sql-endpoint.md").write_text("# The SQL endpoint\n\ntext\n")
    (tmp_path / "guides" / "framing.md").write_text("no title\n")
    nav = [{"Home": "index.md"}, {"Guides": "guides/index.md"}, {"Reference": [{"Guides": "x.md"}]}]
    entries = guides.guides_nav(tmp_path)
    assert entries == [
        "guides/index.md",
        {"Framing": "guides/framing.md"},
        {"The SQL endpoint": "guides/sql-endpoint.md"},
    ]
    filled = guides.fill_nav(nav, guides.SECTION, entries)
    assert filled[1] == {"Guides": entries} and filled[2] == {"Reference": [{"Guides": entries}]}
    assert (ROOT / "docs" / "guides" / "index.md").is_file()
    assert "- Guides: guides/index.md" in (ROOT / "mkdocs.yml").read_text()


def test_the_site_renders_in_chromium_with_no_request_leaving_the_machine(site: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from moulin.platform.browser import chromium_path

    shots = Path(os.environ.get("DOCS_SHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            for rel in BROWSED:
                page.goto((site / rel).as_uri(), wait_until="load")
                assert page.title().strip(), rel
                assert page.locator("article h1").first.inner_text().strip(), rel
                page.screenshot(path=str(shots / f"{rel.replace('/', '-')}.png"))
            assert errors == []
            assert [u for u in requests if not u.startswith(("file://", "data:", "blob:"))] == []
        finally:
            browser.close()


def _validation_result():
    """A real GE 1.x validation result, from the pandas engine (no Spark)."""
    import great_expectations as gx
    import pandas as pd

    from moulin.quality.ge import RESULT_FORMAT

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas(name="docs").add_dataframe_asset(name="t")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": pd.DataFrame({"a": [1, 2, 3, None]})}
    )
    suite = gx.ExpectationSuite(name="t_contract")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="a"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="a", min_value=0, max_value=2))
    return batch.validate(context.suites.add(suite), result_format=RESULT_FORMAT)


def test_stored_data_docs_pages_load_nothing_from_a_network(tmp_path: Path) -> None:
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from moulin.quality.ge import GeValidation, _data_docs, store_validation
    from moulin.settings import load_settings
    from moulin.storage import WarehouseFS

    result = _validation_result()
    raw = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))
    assert remote_references(raw), "GE's page no longer loads from CDNs: this rewrite may go"
    settings = load_settings("local", env={"MOULIN_HOME": str(tmp_path)})
    validation = GeValidation([], result.to_json_dict(), _data_docs(result, "run-1"))
    stored = store_validation(settings, "t", "ds=2024-01-01", validation)
    page = WarehouseFS(settings).read_bytes(stored["data_docs_uri"]).decode()
    assert remote_references(page) == []
    assert not re.search(r"""<(?:link|script)[^>]+(?:href|src)=["']?(?:https?:)?//""", page)
    assert "<style>" in page and ".card-header" in page and "t_contract" in page


def test_a_data_docs_page_renders_styled_offline_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from moulin.platform.browser import chromium_path
    from moulin.quality.ge import _data_docs

    path = tmp_path / "docs.html"
    path.write_text(_data_docs(_validation_result(), "run-1"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            assert (
                page.locator(".card-header").first.evaluate("e => getComputedStyle(e).borderBottomStyle")
                == "solid"
            )
            page.locator("text=Failed Only").first.click()
            assert errors == [] and [u for u in requests if not u.startswith("file://")] == []
        finally:
            browser.close()
