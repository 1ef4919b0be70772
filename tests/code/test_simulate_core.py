"""`driftgate simulate`'s pure core on the real bundled data: the options read against the model
card and params.yaml, the rows picked from a window, the drift injected, the records sent, the
schedule; and the server's error messages as the run reports them. (Named apart from
tests/integration/test_simulate.py: the test folders are not packages, so pytest cannot
collect two modules of one basename.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftgate.data.dataset import LABEL, TIME
from driftgate.errors import ConfigError, DataError
from driftgate.io import read_json
from driftgate.monitoring import simulate as sim


@pytest.fixture(scope="module")
def artifacts(flights_project) -> Path:
    """The bundled flights data validated and the model trained (the flights_project fixture)."""
    return flights_project / "artifacts"


@pytest.fixture(scope="module")
def accepted(artifacts) -> sim.Accepted:
    from driftgate.config import load_params

    return sim.Accepted.from_card(read_json(artifacts / "model.json"), load_params(artifacts.parent / "params.yaml").validation)


@pytest.fixture(scope="module")
def july(artifacts) -> pd.DataFrame:
    return sim.load_window(artifacts / "dataset.parquet", "2013-07")


@pytest.fixture(scope="module")
def rows(july, accepted) -> pd.DataFrame:
    """2,000 July rows /predict accepts, drawn with seed 0, before any injection."""
    return sim.prepare_rows(july, accepted, 2000, "random", 0).features


# --------------------------------------------------------------------------- the options


def test_what_the_server_accepts_comes_from_the_model_card_and_validation_allowed(artifacts, accepted):
    card = read_json(artifacts / "model.json")
    assert accepted.schema.columns == [*card["features"]["numeric"], *card["features"]["categorical"]]
    assert accepted.categories["carrier"] == tuple(card["feature_profile"]["categorical"]["carrier"]["categories"])
    assert accepted.categories["origin"] == ("EWR", "JFK", "LGA")  # validation.allowed in params.yaml
    assert accepted.ranges["humid"] == (0, 100)
    assert (accepted.row, accepted.rows) == ("flight", "flights")


def test_each_kind_of_option_is_read(accepted):
    found = sim.parse_injections(accepted, shift=["temp=+5", "dewp=-2.5"], scale=["wind_speed=1.3"], move=["carrier=UA:0.2"],
                                 missing=["temp=0.3"])
    assert found == [sim.Injection("shift", "temp", 5.0), sim.Injection("shift", "dewp", -2.5), sim.Injection("scale", "wind_speed", 1.3),
                     sim.Injection("move", "carrier", 0.2, "UA"), sim.Injection("missing", "temp", 0.3)]
    assert [i.describe() for i in found] == ["temp +5", "dewp -2.5", "wind_speed x1.3", "20% of rows to carrier=UA", "30% of temp missing"]


@pytest.mark.parametrize(("kind", "given", "where", "problem", "hint"), [
    ("shift", "tmp=+5", "--shift tmp=+5", "'tmp' is not a feature of the model", "numeric features: hour, distance, temp"),
    ("shift", "carrier=+5", "--shift carrier=+5", "'carrier' is a categorical feature, not a numeric one", "wind_gust"),
    ("scale", "temp=x", "--scale temp=x", "'x' is not a number", "--scale wind_speed=1.3"),
    ("scale", "temp=inf", "--scale temp=inf", "not a finite number", "COLUMN=FACTOR"),
    ("shift", "temp5", "--shift temp5", "cannot be read as COLUMN=AMOUNT", "--shift temp=+5"),
    ("move", "carrier=ZZ:0.2", "--move carrier=ZZ:0.2", "'ZZ' is not a category /predict accepts for carrier", "9E, AA, AS"),
    ("move", "origin=ALB:0.2", "--move origin=ALB:0.2", "'ALB' is not a category /predict accepts for origin", "EWR, JFK, LGA"),
    ("move", "temp=UA:0.2", "--move temp=UA:0.2", "'temp' is a numeric feature, not a categorical one", "carrier, origin, dest"),
    ("move", "carrier=UA", "--move carrier=UA", "names no category and share", "carrier=UA:0.2"),
    ("move", "carrier=UA:1.5", "--move carrier=UA:1.5", "above 0 and at most 1 (got 1.5)", "20% of the rows"),
    ("missing", "temp=0", "--missing temp=0", "above 0 and at most 1", "--missing temp=0.3"),
    ("missing", "carrier=0.3", "--missing carrier=0.3", "/predict takes no missing value for a category", "numeric features"),
], ids=lambda v: v if isinstance(v, str) and "=" in v else None)
def test_a_bad_option_is_a_config_error_naming_it_and_what_is_valid(accepted, kind, given, where, problem, hint):
    with pytest.raises(ConfigError) as caught:
        sim.parse_injections(accepted, **{kind: [given]})
    assert caught.value.where == where
    assert problem in caught.value.problem
    assert hint in caught.value.hint


@pytest.mark.parametrize(("text", "per_second"), [("20/s", 20.0), ("300/m", 5.0), ("1800/h", 0.5), ("7", 7.0), ("2.5/sec", 2.5),
                                                   ("max", None)])
def test_rates(text, per_second):
    assert sim.parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "0/s", "-3/s", "20/d", ""])
def test_a_bad_rate_says_how_to_write_one(text):
    with pytest.raises(ConfigError) as caught:
        sim.parse_rate(text)
    assert caught.value.where == "--rate" and "20/s" in caught.value.hint


def test_label_delays():
    assert [sim.parse_delay(t) for t in ("30s", "5m", "1.5s", "0", "off")] == [30.0, 300.0, 1.5, 0.0, None]
    with pytest.raises(ConfigError) as caught:
        sim.parse_delay("soon")
    assert caught.value.where == "--label-delay" and "off" in caught.value.hint


def test_the_schedule_spaces_requests_by_batch_over_rate():
    assert sim.send_offsets(4, 1, 20.0).tolist() == pytest.approx([0.0, 0.05, 0.10, 0.15])
    assert sim.send_offsets(3, 10, 20.0).tolist() == pytest.approx([0.0, 0.5, 1.0])  # 10 rows a request at 20 rows/s
    assert sim.send_offsets(3, 5, None).tolist() == [0.0, 0.0, 0.0]  # max: as fast as the server answers


def test_a_url_must_be_http():
    assert sim.check_url(" http://127.0.0.1:7860/ ") == "http://127.0.0.1:7860"
    with pytest.raises(ConfigError) as caught:
        sim.check_url("127.0.0.1:7860")
    assert caught.value.where == "--url" and "http://127.0.0.1:7860" in caught.value.hint


# --------------------------------------------------------------------------- the rows


def test_a_window_outside_the_data_names_the_option_and_the_span(artifacts):
    with pytest.raises(DataError) as caught:
        sim.load_window(artifacts / "dataset.parquet", "2015-01")
    assert caught.value.where == "--window 2015-01"
    assert "has no rows" in caught.value.problem and "2013-01-01" in caught.value.problem
    with pytest.raises(ConfigError) as caught:
        sim.load_window(artifacts / "dataset.parquet", "July")
    assert caught.value.where == "--window"


def test_random_order_draws_rows_from_the_whole_window(july, accepted):
    picked = sim.pick_rows(july, 2000, "random", seed=0)
    assert picked.index.is_unique  # no row twice while the window has enough
    days = picked[TIME].dt.day.nunique()
    assert days == 31  # a month, not one afternoon
    assert not picked[TIME].is_monotonic_increasing


def test_time_order_replays_the_first_rows_in_time_order(july):
    picked = sim.pick_rows(july, 500, "time")
    assert picked[TIME].is_monotonic_increasing
    assert picked.index.tolist() == july.sort_values(TIME, kind="stable").index[:500].tolist()


def test_more_rows_than_the_window_are_drawn_again_in_random_order(july):
    small = july.iloc[:50]
    picked = sim.pick_rows(small, 120, "random", seed=0)
    assert len(picked) == 120 and set(picked.index) <= set(small.index)
    assert len(sim.pick_rows(small, 120, "time")) == 50


def test_rows_with_a_category_the_model_never_saw_are_left_out_and_counted(july, accepted):
    prepared = sim.prepare_rows(july, accepted, 30_000, "time", 0)
    unseen = ~july["dest"].isin(accepted.categories["dest"])
    assert unseen.sum() > 0  # July has destinations the January-March model never saw
    assert len(prepared) == len(july) - unseen.sum() and prepared.window_rows == len(july)
    [(what, count)] = prepared.left_out.items()
    assert what.startswith("dest 'ACK'") and count == unseen.sum()
    assert prepared.features["dest"].isin(accepted.categories["dest"]).all()


def test_each_row_keeps_its_own_true_label(july, accepted):
    prepared = sim.prepare_rows(july, accepted, 300, "random", 3)
    picked = sim.pick_rows(july[july["dest"].isin(accepted.categories["dest"])], 300, "random", 3)
    assert prepared.labels.tolist() == picked[LABEL].astype(int).tolist()
    pd.testing.assert_frame_equal(prepared.features, picked[accepted.schema.columns].reset_index(drop=True))


# --------------------------------------------------------------------------- the drift


def test_shift_adds_the_amount_to_every_present_value(rows, accepted):
    shifted, [changed] = sim.inject(rows, sim.parse_injections(accepted, shift=["temp=+5"]))
    present = rows["temp"].notna()
    assert changed == present.sum() > 0
    assert np.allclose(shifted.loc[present, "temp"] - rows.loc[present, "temp"], 5.0)
    assert shifted.loc[~present, "temp"].isna().all()
    pd.testing.assert_frame_equal(shifted.drop(columns="temp"), rows.drop(columns="temp"))


def test_scale_multiplies(rows, accepted):
    scaled, _ = sim.inject(rows, sim.parse_injections(accepted, scale=["wind_speed=1.3"]))
    present = rows["wind_speed"].notna()
    assert np.allclose(scaled.loc[present, "wind_speed"], rows.loc[present, "wind_speed"] * 1.3)


def test_move_sets_the_share_of_rows_to_the_category(rows, accepted):
    moved, [changed] = sim.inject(rows, sim.parse_injections(accepted, move=["carrier=UA:0.2"]))
    different = moved["carrier"] != rows["carrier"]
    assert changed == different.sum() == 400  # 20% of 2,000 rows, none of them UA already
    assert (moved.loc[different, "carrier"] == "UA").all()
    assert (moved["carrier"] == "UA").mean() == pytest.approx((rows["carrier"] == "UA").mean() + 0.2)
    pd.testing.assert_frame_equal(moved.drop(columns="carrier"), rows.drop(columns="carrier"))


def test_missing_blanks_the_share_of_present_values(rows, accepted):
    blanked, [changed] = sim.inject(rows, sim.parse_injections(accepted, missing=["temp=0.3"]))
    newly = blanked["temp"].isna() & rows["temp"].notna()
    assert changed == newly.sum() == 600
    assert blanked["temp"].isna().mean() == pytest.approx(rows["temp"].isna().mean() + 0.3)
    kept = blanked["temp"].notna()
    assert (blanked.loc[kept, "temp"] == rows.loc[kept, "temp"]).all()


def test_injected_values_outside_validation_ranges_are_refused_before_sending(july, accepted):
    with pytest.raises(ConfigError) as caught:
        sim.prepare_rows(july, accepted, 2000, "random", 0, sim.parse_injections(accepted, shift=["humid=+10"]))
    assert caught.value.where == "--shift humid=+10"
    assert "outside validation.ranges humid [0, 100] (params.yaml)" in caught.value.problem
    assert "flights" in caught.value.problem


def test_the_same_seed_gives_the_same_traffic_and_another_seed_other_traffic(july, accepted):
    options = sim.parse_injections(accepted, shift=["temp=+5"], move=["carrier=UA:0.2"], missing=["dewp=0.3"])
    one = sim.prepare_rows(july, accepted, 1000, "random", 7, options)
    again = sim.prepare_rows(july, accepted, 1000, "random", 7, options)
    other = sim.prepare_rows(july, accepted, 1000, "random", 8, options)
    assert sim.records(one.features, accepted.schema) == sim.records(again.features, accepted.schema)
    assert one.labels.tolist() == again.labels.tolist() and one.changed == again.changed
    assert sim.records(one.features, accepted.schema) != sim.records(other.features, accepted.schema)
    # the same rows under another seed get the same shift but other rows moved and blanked
    rows = sim.pick_rows(july[july["dest"].isin(accepted.categories["dest"])], 1000, "random", 7)[accepted.schema.columns]
    a, _ = sim.inject(rows.reset_index(drop=True), options, seed=7)
    b, _ = sim.inject(rows.reset_index(drop=True), options, seed=8)
    assert (a["temp"].fillna(0) == b["temp"].fillna(0)).all()
    assert not (a["carrier"] == b["carrier"]).all() and not (a["dewp"].isna() == b["dewp"].isna()).all()


def test_records_are_strict_json_with_missing_numbers_as_null(rows, accepted):
    blanked, _ = sim.inject(rows.head(50), sim.parse_injections(accepted, missing=["temp=0.5"]))
    sent = sim.records(blanked, accepted.schema)
    text = json.dumps(sent, allow_nan=False)  # no NaN in the body: the server refuses it
    assert sum(r["temp"] is None for r in json.loads(text)) >= 25
    assert list(sent[0]) == accepted.schema.columns
    assert all(isinstance(r["carrier"], str) and isinstance(r["distance"], float) for r in sent)


# --------------------------------------------------------------------------- the server's words


def test_the_servers_error_detail_becomes_one_line():
    answer = sim.Answer(422, {"detail": [{"field": "temp", "type": "out_of_range", "message": "130 is outside the allowed range"},
                                         {"field": "dest", "type": "unknown_category", "message": "unknown category 'ZZZ'"}]})
    assert answer.message() == "temp: 130 is outside the allowed range; dest: unknown category 'ZZZ'"
    assert sim.Answer(404, {"detail": "Not Found"}).message() == "Not Found"
    assert sim.Answer(500, "Internal Server Error").message() == "Internal Server Error"
    assert not sim.Answer(422, {}).ok and sim.Answer(200, {}).ok


def test_a_missing_dataset_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError) as caught:
        sim.load_window(tmp_path / "dataset.parquet", "2013-07")
    assert caught.value.where == str(tmp_path / "dataset.parquet") and "`make run`" in caught.value.hint


@pytest.mark.parametrize(("rows", "batch", "where"), [(0, 1, "--rows"), (10, 0, "--batch")])
def test_rows_and_batch_are_counted_from_one(rows, batch, where):
    with pytest.raises(ConfigError) as caught:
        sim.check_counts(rows, batch)
    assert caught.value.where == where and "at least 1" in caught.value.problem
