"""The phase-plot page, rendered directly: what its Bokeh document draws, its scripts, and stable bytes."""

import numpy as np
import pytest
from bokeh.models import ColumnDataSource
from bokeh.resources import Resources

from service.rendering.phaseplot import PhaseSeries, render_phaseplot_html
from tests.bokeh_pages import bokeh_documents, glyph_columns, loaded_urls, models, tags, texts

RESOURCES = Resources(mode="server", root_url="/assets/bokeh/")
LABEL = "TIC 100100827 (S0001-S0003) TCE_1"


def transit_series(n: int = 2000, seed: int = 0) -> PhaseSeries:
    """A box transit in noise, with some cadences missing their phase or their flux, as DV tables have."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-0.47, 0.47, n)
    model = np.where(np.abs(phase) < 0.04, -0.0096, 0.0)
    flux = model + rng.normal(0.0, 3e-4, n)
    flux[::37] = np.nan
    phase[5::41] = np.nan
    return PhaseSeries(phase, flux, model)


def render(series: PhaseSeries, *, embed: bool = False) -> str:
    return render_phaseplot_html(series, label=LABEL, resources=RESOURCES, embed=embed)


def test_the_page_draws_exomasts_labels_and_legend():
    page = render(transit_series())
    assert "<title>Phased Light Curve</title>" in page
    [document] = bokeh_documents(page)
    assert {"Phase (days)", "Relative Flux (ppm)", "Detrended", "Transit Model", LABEL} <= texts(document)
    assert [item["attributes"]["label"]["value"] for item in models(document, "LegendItem")] == [
        "Detrended",
        "Transit Model",
    ]
    assert {figure["attributes"]["output_backend"] for figure in models(document, "Figure")} == {"webgl"}


def test_every_cadence_with_phase_and_flux_is_drawn_in_ppm():
    series = transit_series()
    phase, flux = np.asarray(series.phase_days), np.asarray(series.flux)
    keep = np.isfinite(phase) & np.isfinite(flux)
    assert 0 < keep.sum() < phase.size
    points = glyph_columns(bokeh_documents(render(series))[0], "Scatter")
    np.testing.assert_array_equal(points["x"], phase[keep].astype(np.float32))
    np.testing.assert_allclose(points["y"], flux[keep] * 1e6, rtol=1e-6)


def test_the_model_line_keeps_its_shape_with_fewer_vertices():
    series = transit_series()
    phase, model = np.asarray(series.phase_days), np.asarray(series.model)
    line = glyph_columns(bokeh_documents(render(series))[0], "Line")
    assert np.all(np.diff(line["x"]) >= 0), "drawn in phase order"
    assert line["x"].size < 20, "a box transit needs a handful of vertices, not one per cadence"
    # Every cadence's model value lies on the drawn line (flat runs interpolate to their own value); the page
    # holds float32, DV's own precision.
    drawn = np.isfinite(phase)
    at = phase[drawn].astype(np.float32)
    np.testing.assert_allclose(np.interp(at, line["x"], line["y"]), model[drawn] * 1e6, rtol=1e-6, atol=1e-6)


def test_the_same_data_give_the_same_bytes_and_other_data_other_ids():
    first = render(transit_series())
    ColumnDataSource(data={"x": [1, 2]})  # moves Bokeh's id counter, as other renders in the process do
    assert render(transit_series()) == first
    # Ids are made from the page: two different plots put in one page do not share element ids.
    figure_ids = [models(bokeh_documents(page)[0], "Figure")[0]["id"] for page in (first, render(transit_series(1)))]
    assert figure_ids[0] != figure_ids[1]


def test_only_the_given_bokehjs_bundles_that_the_plot_needs_are_loaded():
    urls = loaded_urls(render(transit_series()))
    assert urls == ["/assets/bokeh/static/js/bokeh.min.js", "/assets/bokeh/static/js/bokeh-gl.min.js"]


def test_the_embeddable_fragment_is_the_same_plot_without_the_page():
    series = transit_series()
    page, fragment = render(series), render(series, embed=True)
    assert not tags(fragment) & {"html", "head", "body", "title"}
    assert {"html", "head", "body", "title"} <= tags(page)
    assert loaded_urls(fragment) == loaded_urls(page)
    [document] = bokeh_documents(fragment)
    root_id = models(document, "Figure")[0]["id"]
    assert f'data-root-id="{root_id}"' in fragment
    np.testing.assert_array_equal(
        glyph_columns(document, "Scatter")["y"], glyph_columns(bokeh_documents(page)[0], "Scatter")["y"]
    )


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        render(PhaseSeries([0.0, 0.1], [0.0], [0.0, 0.0]))
