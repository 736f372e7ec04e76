"""The admin UI's charts without a browser: a forecast's outer quantiles drawn as a
band, advice tags read per slot, and the advice panel drawing a day of tags."""

from __future__ import annotations

from registry.admin_ui.series import advice_timeline, forecast_chart, outer_quantiles
from tests.support.live_ui import live  # noqa: F401  (fixtures)


def test_forecast_chart_uses_the_outer_quantiles_as_a_band():
    forecast = {
        "kind": "consumption",
        "start": "2026-01-01T00:00:00Z",
        "resolution": 900,
        "values": [1.0, 2.0],
        "quantiles": {"p50": [1, 2], "p10": [0.5, 1.5], "p90": [1.5, 2.5]},
    }
    chart = forecast_chart(forecast)
    assert chart["x"][1] - chart["x"][0] == 900
    assert [s["label"] for s in chart["series"]][:2] == ["p10", "p90"] and chart["band"] == [0, 1]
    assert outer_quantiles([{"q": 0.9, "values": [1]}], 1) == (None, None)
    assert forecast_chart({"values": []}) is None


def test_advice_timeline_reads_tags_per_slot():
    slots = advice_timeline(
        {
            "start": "2026-01-01T00:00:00Z",
            "resolution": 900,
            "slots": [{"tag": 1, "code": "CHEAP"}, {"tag": 5, "code": "PEAK"}, {"tag": 9}],
        }
    )
    assert [(s.time, s.tag, s.code) for s in slots] == [("00:00", 1, "CHEAP"), ("00:15", 5, "PEAK")]
    assert [s.tag for s in advice_timeline({"tags": [2, 3]})] == [2, 3]


def test_advice_panel_draws_a_day_of_tags(live):
    advice = {
        "kind": "prosumer",
        "start": "2026-01-01T00:00:00Z",
        "resolution": 900,
        "slots": [{"tag": 1 + i % 5, "code": "LOW_PRICE", "message": "cheap"} for i in range(96)],
    }
    ranked = {"kind": "aggregator", "target_kw": 5, "devices": [{"device_id": "d" * 36, "expected_kw": 2.5}]}
    with live.app.test_request_context("/ui/advice"):
        from flask import render_template

        from registry.admin_ui.series import recommended_devices
        from schemas.vocabulary import TAG_WORDS

        html = render_template(
            "admin_ui/advice.html",
            tag_words=TAG_WORDS,
            entries=[
                {"doc": d, "timeline": advice_timeline(d), "devices": recommended_devices(d)} for d in (advice, ranked)
            ],
        )
    assert html.count('<li class="tag tag-') == 96 and "Prosumer advice for 2026-01-01" in html
    assert "d" * 8 + "…" in html and "2.5" in html
