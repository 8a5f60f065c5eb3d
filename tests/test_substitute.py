"""resolve/substitute.py renders `{{ a.b }}`-only prompts without Jinja2, and
must give exactly what templates.render (Jinja2, sandboxed) gives, or None.
Compared on every example prompt and on generated templates over contexts
with the awkward keys (a key that is a dict method, `_private`, `true`)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler.errors import Location, TemplateError
from compiler.resolve.substitute import substitute
from compiler.resolve.templates import render

ROOT = Path(__file__).resolve().parents[1]
WHERE = Location("t.yaml", 1, 1, "scene")


def jinja(text, context):
    try:
        return render(text, context, WHERE)
    except TemplateError:
        return None   # an error: substitute must not have answered


def example_prompts():
    for path in sorted(ROOT.glob("recipes/*.yaml")):
        doc = yaml.safe_load(path.read_text("utf-8"))
        for key in ("scene", "negative"):
            if isinstance(doc.get(key), str):
                yield doc[key], doc.get("vars", {})
        for cid, char in (doc.get("characters") or {}).items():
            if isinstance(char.get("prompt"), str):
                yield char["prompt"], doc.get("vars", {})


def test_every_example_prompt_is_rendered_without_jinja2_and_identically():
    prompts = list(example_prompts())
    templated = [p for p, _ in prompts if "{{" in p]
    assert len(templated) >= 3
    for text, variables in prompts:
        context = {"vars": variables, "trigger": "tr1gger", "name": "Roxy", "id": "a",
                   "canvas": {"width": 896, "height": 896}}
        fast = substitute(text, context)
        assert fast is not None, text
        assert fast == jinja(text, context), text


CONTEXT = {"vars": {"light": "soft\r\nlight", "n": 3, "x": 0.5, "flag": True, "nothing": None,
                    "items": "a dict method", "_hidden": "no", "true": "shadow", "deep": {"er": "down"},
                    "list": [1, 2], "big": "y" * 60_000},
           "trigger": "tr1gger", "name": "Roxy", "true": "shadowed", "_x": "private",
           "canvas": {"width": 896, "height": 640}}
NAMES = st.sampled_from(["trigger", "name", "vars.light", "vars.n", "vars.x", "vars.flag", "vars.nothing",
                         "vars.items", "vars._hidden", "vars.true", "vars.deep.er", "vars.deep", "vars.list",
                         "vars.missing", "missing", "true", "none", "_x", "canvas.width", "vars.big", "vars.lihgt",
                         "vars.deep.er.more", "in", "vars"])
SPACES = st.sampled_from(["", " ", "  ", "\n", "\t"])
PIECES = st.one_of(
    st.builds(lambda a, n, b: "{{" + a + n + b + "}}", SPACES, NAMES, SPACES),
    st.sampled_from(["a woman", ", ", " ", "\n", "\r\n", "\r", "{", "}", "{{", "}}", "{%", "%}", "{#", "#}",
                     "{{ trigger | upper }}", "{% if true %}x{% endif %}", "{# note #}", "{{{ name }}}",
                     "{{ 'lit' }}", "{{ vars['light'] }}", "é", "🦊", "-", "{{- name -}}"]),
)


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=8).map("".join))
def test_generated_templates_get_the_same_text_or_none(text):
    fast = substitute(text, CONTEXT)
    if fast is not None:
        assert fast == jinja(text, CONTEXT), repr(text)


@pytest.mark.parametrize("text", [
    "{{ vars.items }}",            # Jinja2 finds dict.items first
    "{{ vars._hidden }}", "{{ _x }}",
    "{{ true }}", "{{ none }}",     # constants, not context values
    "{{ missing }}",               # Jinja2 words the error
    "{{ vars.deep }}", "{{ vars.list }}",
    "{{ trigger | upper }}", "{% raw %}x{% endraw %}", "a { b", "{{{ name }}}",
])
def test_what_it_leaves_to_jinja2(text):
    assert substitute(text, CONTEXT) is None


def test_what_it_renders():
    assert substitute("{{trigger}}, {{ name }} in {{ vars.light }}\r\n", CONTEXT) == "tr1gger, Roxy in soft\r\nlight"
    assert substitute("{{ vars.n }}/{{ vars.x }}/{{ vars.flag }}/{{ vars.nothing }}", CONTEXT) == "3/0.5/True/None"
    assert substitute("  plain\r\ntext  ", {}) == "plain\ntext"
