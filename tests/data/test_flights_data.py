"""Expectations on the real bundled dataset: NYC flights 2013 joined with hourly weather."""

import numpy as np
import pandas as pd
import pytest

from driftgate.data.dataset import LABEL, TIME, select_window
from driftgate.data.validation import validate_frame


def test_raw_files_are_the_ones_data_dvc_tracks(raw_data_dir, root):
    import yaml

    tracked = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]
    assert tracked["path"] == "data" and tracked["nfiles"] == 2
    assert sorted(p.name for p in raw_data_dir.iterdir() if not p.name.startswith(".")) == ["flights.csv", "weather.csv"]
    assert sum(p.stat().st_size for p in raw_data_dir.iterdir()) == tracked["size"]


def test_cancelled_flights_are_dropped_and_the_rest_kept(prepared):
    frame, _ = prepared
    assert len(frame) == 327_346  # 336,776 flights minus 9,430 with no arr_delay
    assert frame[LABEL].notna().all()


def test_label_is_binary_with_about_a_quarter_positive(prepared):
    frame, _ = prepared
    assert set(frame[LABEL].unique()) == {0, 1}
    assert frame[LABEL].mean() == pytest.approx(0.2447, abs=0.001)


def test_columns_and_types_match_params(prepared, params):
    frame, schema = prepared
    assert list(schema.categorical) == ["carrier", "origin", "dest"]
    assert set(params.data.features.numeric) <= set(schema.numeric)
    for column in schema.numeric:
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    assert set(frame["origin"].unique()) == {"EWR", "JFK", "LGA"}


def test_no_label_leaking_columns_are_features(prepared):
    _, schema = prepared
    assert not {"arr_delay", "arr_time", "dep_delay", "dep_time", "air_time"} & set(schema.columns)


def test_time_covers_2013_in_order(prepared):
    frame, _ = prepared
    assert frame[TIME].is_monotonic_increasing
    assert frame[TIME].min() >= pd.Timestamp("2013-01-01") and frame[TIME].max() < pd.Timestamp("2014-01-02")


def test_weather_joined_for_almost_every_flight(prepared):
    frame, _ = prepared
    assert frame["temp"].notna().mean() > 0.99
    assert 20 < frame.loc[frame[TIME].dt.month == 1, "temp"].mean() < 45  # January in New York, Fahrenheit
    assert frame.loc[frame[TIME].dt.month == 7, "temp"].mean() > 70


def test_every_configured_window_has_rows(prepared, params):
    frame, _ = prepared
    train = select_window(frame, params.windows.train, "train")
    current = select_window(frame, params.windows.current, "current")
    assert len(train) > 70_000 and len(current) > 20_000
    assert train[TIME].max() < current[TIME].min()


def test_the_real_data_passes_the_shipped_validation_rules(prepared, params):
    frame, schema = prepared
    _, findings = validate_frame(frame, params, schema)
    assert findings == []


# --------------------------------------------------------------------------- reading the time, and the shared checks


def _flights_head(rows: int = 20_000) -> pd.DataFrame:
    from driftgate.io import read_table

    return read_table("data/flights.csv").head(rows)


def _with_data(params, **changes):
    data = params.data.model_copy(update={"join": None, **changes})
    return params.model_copy(update={"data": data})


def test_time_built_from_year_month_day_hour_is_the_local_time_of_time_hour(params, raw_data_dir, monkeypatch):
    from driftgate.config import FeatureConfig, TimeFrom
    from driftgate.data.dataset import prepare_frame

    monkeypatch.chdir(raw_data_dir.parent)
    features = FeatureConfig(numeric=["distance"], categorical=["time_hour"])
    parts = _with_data(params, time_column=None, features=features,
                       time_from=TimeFrom(year="year", month="month", day="day", hour="hour"))
    frame, schema = prepare_frame(_flights_head(), parts, "data/flights.csv")
    local = pd.to_datetime(frame["time_hour"], utc=True).dt.tz_convert("America/New_York").dt.tz_localize(None)
    assert (frame[TIME] == local).all()
    assert schema.numeric == ("distance",)


def test_a_numeric_time_column_is_refused_not_read_as_nanoseconds(params, raw_data_dir, monkeypatch):
    from driftgate.config import FeatureConfig
    from driftgate.data.dataset import prepare_frame
    from driftgate.errors import DataError

    monkeypatch.chdir(raw_data_dir.parent)
    hhmm = _with_data(params, time_column="sched_dep_time", features=FeatureConfig(numeric=["distance"], categorical=[]))
    with pytest.raises(DataError) as caught:
        prepare_frame(_flights_head(), hhmm, "data/flights.csv")
    assert "time column 'sched_dep_time'" in caught.value.problem and "holds numbers" in caught.value.problem
    assert "data.time_unit" in caught.value.hint and "data.time_format" in caught.value.hint


def test_the_real_data_passes_the_checks_every_read_path_applies(prepared):
    from driftgate.io import check_table

    frame, schema = prepared
    assert check_table(frame, "dataset", numeric_columns=schema.numeric, columns=[*schema.columns, LABEL]) is frame


@pytest.mark.parametrize("how", ["iso text", "time_format", "time_unit seconds", "time_unit hours since 2013", "parquet timestamps"])
def test_every_way_of_reading_the_time_gives_the_same_times(params, raw_data_dir, monkeypatch, tmp_path, how):
    from driftgate.config import FeatureConfig
    from driftgate.data.dataset import prepare_frame

    monkeypatch.chdir(raw_data_dir.parent)
    raw = _flights_head(5_000)
    stamps = pd.to_datetime(raw["time_hour"], utc=True)
    expected = stamps.dt.tz_localize(None)
    changes = {"time_column": "t", "features": FeatureConfig(numeric=["distance"], categorical=["carrier"])}
    column = {
        "iso text": raw["time_hour"],
        "time_format": stamps.dt.strftime("%d/%m/%Y %H:%M"),
        "time_unit seconds": stamps.astype("int64") // 10**9,
        "time_unit hours since 2013": (expected - pd.Timestamp("2013-01-01")) / pd.Timedelta(hours=1),
        "parquet timestamps": stamps,
    }[how]
    changes.update({"time_format": {"time_format": "%d/%m/%Y %H:%M"}, "time_unit seconds": {"time_unit": "seconds"},
                    "time_unit hours since 2013": {"time_unit": "hours", "time_origin": "2013-01-01"}}.get(how, {}))
    table = raw.assign(t=column, row=np.arange(len(raw)))
    if how == "parquet timestamps":
        table.to_parquet(tmp_path / "t.parquet")
        table = pd.read_parquet(tmp_path / "t.parquet")
        assert isinstance(table["t"].dtype, pd.DatetimeTZDtype)
    frame, _ = prepare_frame(table, _with_data(params, **changes), "flights")
    kept = table.loc[table["arr_delay"].notna()].set_index("row")
    assert frame[TIME].is_monotonic_increasing and len(frame) == len(kept)
    assert sorted(frame[TIME]) == sorted(expected[kept.index])
