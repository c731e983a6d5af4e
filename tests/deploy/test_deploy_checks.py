"""The parsers the deployment tests rely on, on known inputs: a checker that
is wrong passes everything."""
import pytest

import deploy_checks as dc


@pytest.mark.parametrize("text,seconds", [
    ("0", 0.0), ("5s", 5.0), ("1m30s", 90.0), ("250ms", 0.25), ("1.5h", 5400.0),
    ("100us", 1e-4), ("-2s", -2.0), ("1h2m3s4ms", 3723.004)])
def test_absl_durations(text, seconds):
    assert dc.parse_absl_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "s", "5 s", "5sec", "", "1d"])
def test_absl_duration_rejects(text):
    with pytest.raises(ValueError):
        dc.parse_absl_duration(text)


def test_flag_values_last_wins():
    assert dc.flag_values(["--a=1", "--b", "x", "--c", "--a=2", "-d=3"]) == \
        {"a": "2", "b": "x", "c": "true", "d": "3"}


def test_parse_server_help():
    text = ('    --device (auto | cpu | cuda); default: "auto";\n'
            '    --drain_delay (After SIGTERM: keep serving (e.g. 5s in\n'
            '      Kubernetes)); default: 0;\n'
            '    --intra_op_threads (threads (0: keep; unset there: usable CPUs));\n'
            '      default: 0;\n'
            '    --metrics (x); default: true;\n')
    assert dc.parse_server_help(text).defaults == {"device": "auto", "drain_delay": "0",
                                                   "intra_op_threads": "0",
                                                   "metrics": "true"}


@pytest.mark.parametrize("expr,names", [
    ('sum by (code) (rate(fusion_requests_total{model=~"$model",code!="OK"}[$__rate_interval]))',
     {"fusion_requests_total"}),
    ('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[5m])))', {"a_bucket"}),
    ('sum(rate(a_sum[1m])) / sum(rate(a_count[1m]))', {"a_sum", "a_count"}),
    ('rate(p_total[1m]) and on (job, instance) info{instance=~"$instance"}', {"p_total", "info"}),
    ('x * on (pod) group_left (node) y offset 5m', {"x", "y"}),
    ('count by (version, git_sha) (build_info)', {"build_info"}),
    ('{__name__="weird_metric", job="j"}', {"weird_metric"}),
    ('sum without (le) (topk(3, m))', {"m"}),
    ('2e3 * m', {"m"}),
])
def test_promql_metric_names(expr, names):
    assert dc.promql_metric_names(expr) == names


def test_grafana_expressions_and_variables():
    dash = {"panels": [{"title": "t", "targets": [{"refId": "A", "expr": "a"}],
                        "panels": []},
                       {"title": "row", "type": "row",
                        "panels": [{"title": "u", "targets": [{"refId": "B", "expr": "b"}]}]}],
            "templating": {"list": [
                {"name": "v", "type": "query",
                 "query": {"query": 'label_values(c{x="$y"}, model)'}},
                {"name": "ds", "type": "datasource", "query": "prometheus"}]}}
    exprs = [e for _, e in dc.grafana_expressions(dash)]
    assert exprs == ["a", "b", 'c{x="$y"}']
    assert dc.substitute_grafana_variables('r{a=~"$a",b="${b}"}[$__rate_interval]',
                                           {"a": "1", "b": "2", "__rate_interval": "1m"}) == \
        'r{a=~"1",b="2"}[1m]'


def test_dockerignore_semantics():
    patterns = ["build*/", ".git/", "**/__pycache__/", "model/", "*.log", "!keep.log"]
    ex = dc.dockerignore_excludes
    assert ex(patterns, "build/server/x") and ex(patterns, "build-tsan/a")
    assert ex(patterns, ".git/HEAD") and ex(patterns, "a/b/__pycache__/c.pyc")
    assert ex(patterns, "__pycache__/c.pyc")
    assert ex(patterns, "model/train.py") and not ex(patterns, "models/fusion/1/model.pt")
    assert ex(patterns, "x.log") and not ex(patterns, "keep.log") and not ex(patterns, "a/x.log")
    assert not ex(patterns, "server/main.cc")


def test_dockerfile_parser(tmp_path):
    p = tmp_path / "Dockerfile"
    p.write_text('ARG BASE=debian:bookworm\nFROM ${BASE} AS build\n'
                 'RUN apt-get update && \\\n  # a comment\n  apt-get install -y --no-install-recommends \\\n'
                 '      liba libb && rm -rf x\nCOPY a b ./\nCOPY --from=x /o /p\n'
                 'FROM debian:bookworm-slim AS runtime\nUSER 10001\nEXPOSE 1 2/tcp\n'
                 'CMD ["--x=1"]\n')
    df = dc.parse_dockerfile(str(p))
    assert [s.name for s in df.stages] == ["build", "runtime"]
    assert df.global_args[0].args == "BASE=debian:bookworm"
    assert dc.apt_installed(df.stage("build")) == ["liba", "libb"]
    assert dc.copy_sources(df.stage("build")) == ["a", "b"]
    assert dc.exposed_ports(df.final) == {1, 2}
    assert dc.exec_form(df.final.last("CMD")) == ["--x=1"]


def test_adapter_names():
    rule = {"name": {"matches": "^(.*)_total$", "as": "${1}_per_second"}}
    assert dc.adapter_exposed_name(rule, "http_requests_total") == "http_requests_per_second"
    assert dc.adapter_exposed_name(rule, "gauge") is None
    assert dc.adapter_exposed_name({"name": {"matches": "^g$", "as": "h"}}, "g") == "h"
    assert dc.series_query_metric('fusion_x{namespace!="",pod!=""}') == "fusion_x"
    assert dc.series_query_metric('{__name__="y",pod!=""}') == "y"
    assert dc.expand_adapter_query("sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})",
                                   "m", 'pod="p"', "pod") == 'sum by (pod) (m{pod="p"})'
