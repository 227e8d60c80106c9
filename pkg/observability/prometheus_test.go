package observability

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opencensus.io/stats"
	"go.opencensus.io/stats/view"
	"go.opencensus.io/tag"
	clocktest "k8s.io/utils/clock/testing"
)

// fullExposition returns an exposition with every family: requests of
// several codes and route tags (one needing escapes), the queue depth and
// the memory gauges.
func fullExposition(t *testing.T) string {
	t.Helper()
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	cfg := testIdentity
	cfg.Service = `svc "quoted" \ back`
	cfg.RouteTag = routeTagHeaders
	cfg.QueueDepth = func() int { return 3 }
	m := newTestMetrics(t, clk, cfg)
	h := testChain(m, clk, timedApp(clk))
	for _, hd := range []map[string]string{
		{"X-App-Ms": "3"},
		{"X-App-Ms": "700", "X-Code": "500"},
		{"Knative-Serving-Tag": "a\"b\\c", "X-App-Ms": "1"},
		{"Knative-Serving-Default-Route": "true", "X-Reject": "503"},
	} {
		serve(h, hd)
	}
	body, _ := scrape(t, m)
	return body
}

// promtoolNameLints are the findings of `promtool check metrics` that come
// from Knative 1.15's metric names themselves, which dashboards depend on:
// its counters end in _count, not _total.
var promtoolNameLints = []string{
	`revision_app_request_count counter metrics should have "_total" suffix`,
	`revision_app_request_count non-histogram and non-summary metrics should not have "_count" suffix`,
	`revision_request_count counter metrics should have "_total" suffix`,
	`revision_request_count non-histogram and non-summary metrics should not have "_count" suffix`,
}

// TestPromtoolCheckMetrics runs Prometheus' own linter over our exposition.
// Parse errors and any finding other than the name lints above fail the
// test. Without promtool (Debian package prometheus) the test is skipped on
// a developer's machine, never in CI (CI=true), where .ci/run installs it.
func TestPromtoolCheckMetrics(t *testing.T) {
	verifyNoLeaks(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found in CI; .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CI runs this test")
	}
	body := fullExposition(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running promtool: %v", err)
	}
	// promtool exits 1 on errors and 3 on lint findings only.
	if err != nil && exit.ExitCode() != 3 {
		t.Fatalf("promtool check metrics failed (%v):\n%s\non:\n%s", err, out.String(), body)
	}
	var findings []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" {
			findings = append(findings, line)
		}
	}
	slices.Sort(findings)
	if !slices.Equal(findings, promtoolNameLints) {
		t.Errorf("promtool check metrics reported:\n%s\nwant only the 1.15 name lints:\n%s\non:\n%s",
			strings.Join(findings, "\n"), strings.Join(promtoolNameLints, "\n"), body)
	}
}

// TestExpositionEscapes: label values and HELP texts are escaped so that
// Prometheus' parser reads back the original strings.
func TestExpositionEscapes(t *testing.T) {
	body := fullExposition(t)
	fams := parseExposition(t, body)
	find(t, fams, "revision_request_count", map[string]string{"route_tag": "a\"b\\c", "service_name": `svc "quoted" \ back`})
	if !strings.Contains(body, `route_tag="a\"b\\c"`) {
		t.Errorf("route_tag not escaped as the text format requires:\n%s", body)
	}
}

// TestAppendFamily covers the mapping from view data to samples directly,
// with rows built by hand: every aggregation type, absent tags, special
// floats, escapes in HELP and label values, and rows of the wrong type.
func TestAppendFamily(t *testing.T) {
	k1, k2 := tag.MustNewKey("b_key"), tag.MustNewKey("a_key")
	measure := stats.Float64("test/append_family", "", stats.UnitDimensionless)
	mkView := func(agg *view.Aggregation, keys ...tag.Key) *view.View {
		return &view.View{Name: "v", Measure: measure, Aggregation: agg, TagKeys: keys}
	}
	dist := func(counts []int64, count int64, mean float64) *view.DistributionData {
		return &view.DistributionData{Count: count, Mean: mean, CountPerBucket: counts}
	}
	tests := []struct {
		name string
		f    promFamily
		rows []*view.Row
		want string
	}{{
		name: "no rows, no family",
		f:    promFamily{Name: "x", Help: "h", Type: promCounter, View: mkView(view.Count())},
	}, {
		name: "counter from Count, labels sorted, absent tag empty, rows sorted",
		f:    promFamily{Name: "x", Help: "line1\nback\\slash \"q\"", Type: promCounter, View: mkView(view.Count(), k1, k2), Const: []promLabel{{"c_const", "k"}}},
		rows: []*view.Row{
			{Tags: []tag.Tag{{Key: k1, Value: "z"}}, Data: &view.CountData{Value: 2}},
			{Tags: []tag.Tag{{Key: k1, Value: "y\n\"\\"}, {Key: k2, Value: "a"}}, Data: &view.CountData{Value: 1}},
		},
		want: "# HELP x line1\\nback\\\\slash \"q\"\n# TYPE x counter\n" +
			"x{a_key=\"\",b_key=\"z\",c_const=\"k\"} 2\n" +
			"x{a_key=\"a\",b_key=\"y\\n\\\"\\\\\",c_const=\"k\"} 1\n",
	}, {
		name: "counter from Sum and from a distribution's count",
		f:    promFamily{Name: "x", Help: "h", Type: promCounter, View: mkView(view.Sum())},
		rows: []*view.Row{{Data: &view.SumData{Value: 2.5}}},
		want: "# HELP x h\n# TYPE x counter\nx 2.5\n",
	}, {
		name: "gauge, special values",
		f:    promFamily{Name: "g", Help: "h", Type: promGauge, View: mkView(view.LastValue(), k2)},
		rows: []*view.Row{
			{Tags: []tag.Tag{{Key: k2, Value: "1"}}, Data: &view.LastValueData{Value: math.Inf(1)}},
			{Tags: []tag.Tag{{Key: k2, Value: "2"}}, Data: &view.LastValueData{Value: math.Inf(-1)}},
			{Tags: []tag.Tag{{Key: k2, Value: "3"}}, Data: &view.LastValueData{Value: math.NaN()}},
			{Tags: []tag.Tag{{Key: k2, Value: "4"}}, Data: &view.LastValueData{Value: 1e21}},
			{Tags: []tag.Tag{{Key: k2, Value: "5"}}, Data: &view.LastValueData{Value: -0.25}},
			{Tags: []tag.Tag{{Key: k2, Value: "6"}}, Data: &view.CountData{Value: 9}}, // not a gauge: skipped
		},
		want: "# HELP g h\n# TYPE g gauge\n" +
			"g{a_key=\"1\"} +Inf\ng{a_key=\"2\"} -Inf\ng{a_key=\"3\"} NaN\ng{a_key=\"4\"} 1e+21\ng{a_key=\"5\"} -0.25\n",
	}, {
		name: "histogram: cumulative buckets, +Inf, sum, count; no labels",
		f:    promFamily{Name: "h", Help: "h", Type: promHistogram, View: mkView(view.Distribution(0.5, 10, 1e6))},
		rows: []*view.Row{{Data: dist([]int64{1, 0, 2, 3}, 6, 2.5)}},
		want: "# HELP h h\n# TYPE h histogram\n" +
			"h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"10\"} 1\nh_bucket{le=\"1e+06\"} 3\nh_bucket{le=\"+Inf\"} 6\nh_sum 15\nh_count 6\n",
	}, {
		name: "derived label, from a tag and from an absent tag",
		f: promFamily{Name: "d", Help: "h", Type: promCounter, View: mkView(view.Count(), k2),
			Derived: []derivedLabel{{name: "b_derived", from: "a_key", value: func(s string) string { return "<" + s + ">" }}}},
		rows: []*view.Row{
			{Tags: []tag.Tag{{Key: k2, Value: "v"}}, Data: &view.CountData{Value: 1}},
			{Data: &view.CountData{Value: 2}},
		},
		want: "# HELP d h\n# TYPE d counter\nd{a_key=\"\",b_derived=\"<>\"} 2\nd{a_key=\"v\",b_derived=\"<v>\"} 1\n",
	}, {
		name: "counter family fed by a distribution",
		f:    promFamily{Name: "c", Help: "h", Type: promCounter, View: mkView(view.Distribution(1), k2)},
		rows: []*view.Row{{Tags: []tag.Tag{{Key: k2, Value: "v"}}, Data: dist([]int64{4, 1}, 5, 0.7)}},
		want: "# HELP c h\n# TYPE c counter\nc{a_key=\"v\"} 5\n",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendFamily(nil, &tc.f, tc.rows))
			if got != tc.want {
				t.Errorf("appendFamily =\n%s\nwant\n%s", got, tc.want)
			}
			if got != "" {
				parseExposition(t, got)
			}
		})
	}
}
