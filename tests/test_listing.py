import inspect
import shutil

import nbformat
import pytest

from mnistlab import augment, listing, report


def test_listing_is_the_functions_own_source():
    shown = listing.show(augment.augment_images, docstring=True)
    assert shown.source == inspect.getsource(augment.augment_images)
    assert shown.path == "src/mnistlab/augment.py"
    assert shown.line == inspect.getsourcelines(augment.augment_images)[1]


def test_docstrings_are_left_out_by_default_and_nothing_else():
    full = inspect.getsource(augment.augment_images)
    doc = inspect.getdoc(augment.augment_images).splitlines()[0]
    shown = listing.show(augment.augment_images)
    assert doc not in shown.source and doc in full
    kept = [line for line in full.splitlines() if line.strip() and line in shown.source.splitlines()]
    assert shown.source.splitlines() == kept
    assert "docstring left out" in shown.header()


def test_a_name_is_read_without_importing_and_matches_inspect():
    from mnistlab import networks

    by_name = listing.show("mnistlab.networks.build_bn_cnn", docstring=True)
    assert by_name.source == inspect.getsource(networks.build_bn_cnn)
    assert by_name.name == "networks.build_bn_cnn"


def test_missing_names_fall_back_or_say_so():
    shown = listing.show("mnistlab.no_such_module.step", fallback=["mnistlab.augment.nope", augment.augment_images])
    assert shown.name == "augment.augment_images" and shown.source
    missing = listing.show("mnistlab.no_such_module.step")
    assert not missing.source and "not in this version" in missing._repr_markdown_()


def test_lines_keep_a_part_and_mark_the_cuts():
    shown = listing.show(augment.augment_images, lines=(1, 3))
    assert shown.source.splitlines()[:3] == inspect.getsource(augment.augment_images).splitlines()[:3]
    assert shown.source.splitlines()[-1].strip() == "..."


def test_markdown_is_a_python_fence_without_machine_paths():
    text = listing.show(augment.augment_images)._repr_markdown_()
    assert "```python\ndef augment_images(" in text and text.rstrip().endswith("```")
    assert "/work" not in text and "/home" not in text and "site-packages" not in text


def _notebook_with(display_object):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("listing.show(augment.augment_images)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/markdown": display_object._repr_markdown_(), "text/plain": repr(display_object)},
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter"), cell]
    nb.metadata["title"] = "t"
    nb.metadata["mnistlab"] = {"title_rows": [["Dataset", "mnist"]]}
    return nb


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc renders Markdown outputs in LaTeX")
def test_latex_of_the_report_template_highlights_the_listing():
    from nbconvert import LatexExporter
    from traitlets.config import Config

    cfg = Config()
    cfg.TemplateExporter.exclude_input = True  # as in the PDF: code cells hidden, their outputs shown
    exporter = LatexExporter(
        config=cfg, extra_template_paths=[str(report.TEMPLATES)], template_file="mnistlab_report.tex.j2"
    )
    latex, _ = exporter.from_notebook_node(_notebook_with(listing.show(augment.augment_images)))
    body = latex[latex.index("\\begin{document}") :]
    assert "\\begin{Shaded}" in body and "\\begin{Highlighting}" in body
    assert "\\KeywordTok{def}" in body and "augment\\_images(" in body  # pandoc marks up the code
    assert "listing.show(" not in body  # the code cell itself stays hidden
    assert "breaklines" in latex  # long lines wrap instead of running off the page


def test_html_highlights_the_listing():
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="lab").from_notebook_node(_notebook_with(listing.show(augment.augment_images)))
    assert 'class="highlight' in html and '<span class="k">def</span>' in html


def test_methods_by_name_and_nothing_imported():
    import subprocess
    import sys
    import textwrap

    method = listing.show("mnistlab.listing.Listing.header", docstring=True)
    assert method.source == textwrap.dedent(inspect.getsource(listing.Listing.header))
    code = (
        "import sys; from mnistlab import listing; "
        "shown = listing.show('mnistlab.jaxloop.augment_batch'); "
        "assert shown.source.startswith('def augment_batch('), shown; "
        "assert 'jax' not in sys.modules and 'keras' not in sys.modules and 'mnistlab.jaxloop' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
