"""The structure the code promises (docs/architecture.md): import direction, one
definition of the intent sets and of every text, every action wired, and container
images that hold what their process imports."""

from __future__ import annotations

import ast
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Action, utils
from rasa_sdk.executor import ActionExecutor

from actions.intents import ASIDE_INTENTS, LEAVING_INTENTS, SWITCH_INTENTS
from clinic.settings import DEFAULT_TEMPLATES_PATH, Settings, variables
from clinic.templates import templates_for
from connectors.nlg import template_of

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
RULES = yaml.safe_load((ROOT / "data" / "rules.yml").read_text())["rules"]
PROJECT_PACKAGES = {"clinic", "actions", "connectors", "console", "entrypoints"}
# The one module of the core that reaches outside it: `python -m clinic` keeps its
# documented name and hands over to the staff CLI.
LAUNCHER = ROOT / "clinic" / "__main__.py"


def imported_packages(path: Path) -> set[str]:
    """The project packages a module imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PROJECT_PACKAGES
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("clinic", {"actions", "connectors", "console", "entrypoints"}),
        ("actions", {"connectors", "console", "entrypoints"}),
        ("connectors", {"actions", "console", "entrypoints"}),
        ("console", {"actions", "connectors", "entrypoints"}),
    ],
)
def test_imports_point_inwards(package, forbidden):
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & forbidden)
        for path in modules_of(package)
        if path != LAUNCHER and imported_packages(path) & forbidden
    }
    assert wrong == {}


def test_the_core_launcher_only_hands_over_to_the_cli():
    assert imported_packages(LAUNCHER) == {"entrypoints"}
    assert "from entrypoints.cli import main" in LAUNCHER.read_text()


def test_importing_the_core_loads_no_adapter():
    """The same at run time: every core module imported, no adapter package loaded."""
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in modules_of("clinic")
        if path != LAUNCHER and "migrations" not in path.parts
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        f"set({sorted(PROJECT_PACKAGES - {'clinic'})!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- one definition of the intent sets -------------------------------------------------


def _intents_of(step: dict) -> set[str]:
    if "intent" in step:
        return {step["intent"]}
    return {alternative["intent"] for alternative in step.get("or", [])}


def test_every_form_has_one_aside_rule_listing_exactly_the_aside_intents():
    aside_rules = [r for r in RULES if {"action": "action_answer_aside"} in r["steps"]]
    forms = sorted(DOMAIN["forms"])
    assert sorted(r["condition"][0]["active_loop"] for r in aside_rules) == forms
    for rule in aside_rules:
        assert _intents_of(rule["steps"][0]) == ASIDE_INTENTS, rule["rule"]


def test_exactly_the_leaving_intents_leave_any_form():
    leaving = set()
    for rule in RULES:
        if "condition" not in rule and {"action": "action_deactivate_loop"} in rule["steps"]:
            leaving |= _intents_of(rule["steps"][0])
    assert leaving == LEAVING_INTENTS


def test_every_form_lets_go_for_the_other_tasks():
    """Cancelling or moving an appointment can start inside any form but its own."""
    doing = {"cancel_appointment": "cancel_form", "reschedule_appointment": "reschedule_form"}
    switches = {
        (rule["condition"][0]["active_loop"], intent)
        for rule in RULES
        if "condition" in rule and {"action": "action_deactivate_loop"} in rule["steps"]
        for intent in _intents_of(rule["steps"][0])
    }
    expected = {
        (form, intent) for form in DOMAIN["forms"] for intent in SWITCH_INTENTS
        if doing[intent] != form
    }  # fmt: skip
    assert switches == expected


# --- every action wired, every text in one file ----------------------------------------


def test_every_custom_action_of_the_domain_is_served():
    """rasa_sdk's action server serves every `Action` of the package (actions/server.py)."""
    executor = ActionExecutor()
    executor._import_submodules("actions")  # what `register_package` imports
    found = [a for a in utils.all_subclasses(Action) if a.__module__.startswith("actions.")]
    custom = {a for a in DOMAIN["actions"] if not a.startswith("utter_")}
    served = {action.name(action) for action in found if not inspect.isabstract(action)}
    assert served == custom


def test_every_response_names_its_text_in_the_templates_and_holds_none_itself():
    texts = templates_for(Settings())
    for name, variations in DOMAIN["responses"].items():
        assert variations == [{"custom": {"template": template_of(name)}}], name
        assert texts.render(template_of(name))


def test_no_patient_text_is_written_in_code():
    """Sentences patients read live in templates.yml; code holds none of them."""
    texts = yaml.safe_load(DEFAULT_TEMPLATES_PATH.read_text())
    sources = "\n".join(
        path.read_text() for package in PROJECT_PACKAGES for path in modules_of(package)
    )
    quoted = [text for text in texts.values() if len(text) > 25 and text[:25] in sources]
    assert quoted == []


# --- each image holds what its process imports -----------------------------------------

# The modules each image's processes start from.
ENTRY_MODULES = {
    "Dockerfile.actions": ["clinic.production", "actions.server", "rasa_sdk_plugins"],
    "Dockerfile.rasa": ["clinic.production", "connectors.rasa_server", "connectors.instagram",
                        "connectors.twilio_webhooks", "connectors.calendar_feeds",
                        "connectors.stores", "connectors.nlg", "entrypoints.cli",
                        "console.server"],
}  # fmt: skip


def copied_paths(dockerfile: Path) -> list[str]:
    """The project paths a Dockerfile's COPY lines bring into the image."""
    paths = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            sources = [w for w in words[1:-1] if not w.startswith("--")]
            paths += sources
    return paths


@pytest.mark.parametrize("dockerfile", sorted(ENTRY_MODULES))
def test_each_image_holds_what_its_entry_modules_import(dockerfile, tmp_path):
    for source in copied_paths(ROOT / "deploy" / dockerfile):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(origin, tmp_path / source)
    code = "; ".join(f"import {module}" for module in ENTRY_MODULES[dockerfile])
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    missing = re.findall(r"No module named '([^']+)'", result.stderr)
    assert result.returncode == 0, missing or result.stderr[-2000:]


def test_the_readme_documents_exactly_the_settings():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| Variable | Default | Meaning |") :].split("\n\n")[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines()[2:]
    )))  # fmt: skip
    assert documented == {variable.metadata["env"] for variable in variables()}
