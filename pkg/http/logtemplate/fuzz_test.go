package logtemplate

import (
	"regexp"
	"strings"
	"testing"
	"text/template/parse"
	"time"
)

// knativeTemplate is Knative 1.15's request log template.
const knativeTemplate = `{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": "{{js .Request.RequestURI}}", "requestSize": "{{.Request.ContentLength}}", "status": {{.Response.Code}}, "responseSize": "{{.Response.Size}}", "userAgent": "{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", "serverIp": "{{.Revision.PodIP}}", "referer": "{{js .Request.Referer}}", "latency": "{{.Response.Latency}}s", "protocol": "{{.Request.Proto}}"}, "traceId": "{{index .Request.Header "X-B3-Traceid"}}"}`

// fuzzOutputLimit caps what one execution may write: both engines fail
// beyond it.
const fuzzOutputLimit = 1 << 20

// FuzzExecuteMatchesTextTemplate executes arbitrary templates with
// text/template and with this package, each on its own fresh data: they
// must agree on parse errors; where text/template succeeds, ours must
// produce the same output (unless it reports an unsupported method); where
// text/template fails, ours must fail.
func FuzzExecuteMatchesTextTemplate(f *testing.F) {
	for _, c := range differentialCases {
		f.Add(c.text)
	}
	f.Add(knativeTemplate)
	funcs := testFuncs(true)
	f.Fuzz(func(t *testing.T, text string) {
		if reason := tooCostly(text, funcs); reason != "" {
			t.Skip(reason)
		}
		std, ok := runStdGuarded(text, funcs)
		if !ok {
			t.Skip("text/template panicked or ran too long")
		}
		ours := runOurs(text, funcs, fuzzOutputLimit)
		if problem, _ := compareOutcomes(text, std, ours); problem != "" {
			t.Fatal(problem)
		}
	})
}

// runStdGuarded is runStd, reporting false if text/template panics (which
// it does on some data, e.g. values read through unexported fields) or runs
// for more than 10s.
func runStdGuarded(text string, funcs map[string]any) (outcome, bool) {
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if recover() != nil {
				close(done)
			}
		}()
		done <- runStd(text, funcs, fuzzOutputLimit)
	}()
	select {
	case o, ok := <-done:
		return o, ok
	case <-time.After(10 * time.Second):
		return outcome{}, false
	}
}

var (
	longNumber  = regexp.MustCompile(`[0-9]{5}`)
	variableRef = regexp.MustCompile(`\$[A-Za-z0-9_]`)
)

// tooCostly returns why executing text could take too long or too much
// memory to be a fuzz input, or "". It is a conservative estimate on the
// parse tree: ranges multiply the cost of their bodies by the largest
// number they could iterate over; recursion is allowed only in shapes whose
// cost is linear; output-growing functions may be applied only a few times.
func tooCostly(text string, funcs map[string]any) string {
	names := make(map[string]any, len(builtins)+len(funcs))
	for n, b := range builtins {
		names[n] = b
	}
	for n, fn := range funcs {
		names[n] = fn
	}
	trees, err := parse.Parse("t", text, "", "", names)
	if err != nil {
		return "" // both fail to parse, cheaply
	}
	e := &estimator{trees: trees, active: map[string]bool{}, memo: map[string]float64{}, iterations: 256}
	for _, tree := range trees {
		e.scan(tree.Root)
	}
	if e.maxInt >= e.iterations {
		e.iterations = e.maxInt + 1
	}
	switch {
	case strings.Contains(text, "printf") && (longNumber.MatchString(text) || strings.Contains(text, "*")):
		return "printf with a large width or precision"
	case e.growers > 12 || e.growers > 0 && len(variableRef.FindAllString(text, -1)) > 8:
		return "could build huge strings"
	}
	root := trees["t"]
	if root == nil {
		return ""
	}
	cost := e.cost(root.Root)
	switch {
	case e.recursive && (e.ranges > 0 || e.growers > 0 || e.calls > 0 || e.templates > 2):
		return "recursion that could branch or grow"
	case cost > 2e6:
		return "too many iterations"
	}
	return ""
}

// estimator bounds the work of executing a set of trees.
type estimator struct {
	trees      map[string]*parse.Tree
	active     map[string]bool // templates being costed (to detect recursion)
	memo       map[string]float64
	iterations float64 // the most iterations a range can do
	maxInt     float64 // the largest number literal
	recursive  bool
	ranges     int
	templates  int
	calls      int // function calls (other than growers)
	growers    int // calls of functions whose result may be longer than their arguments
}

// scan counts what tooCostly looks at, in all the trees.
func (e *estimator) scan(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				e.scan(c)
			}
		}
	case *parse.ActionNode:
		e.scan(n.Pipe)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				e.scan(c)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			e.scan(a)
		}
	case *parse.ChainNode:
		e.scan(n.Node)
	case *parse.IdentifierNode:
		switch n.Ident {
		case "print", "printf", "println", "html", "js", "urlquery", "call", "upper", "vari", "rv":
			e.growers++
		default:
			e.calls++
		}
	case *parse.NumberNode:
		if n.IsFloat && n.Float64 > e.maxInt {
			e.maxInt = n.Float64
		}
		if n.IsFloat && -n.Float64 > e.maxInt {
			e.maxInt = -n.Float64
		}
	case *parse.IfNode:
		e.scanBranch(&n.BranchNode)
	case *parse.WithNode:
		e.scanBranch(&n.BranchNode)
	case *parse.RangeNode:
		e.ranges++
		e.scanBranch(&n.BranchNode)
	case *parse.TemplateNode:
		e.templates++
		e.scan(n.Pipe)
	}
}

func (e *estimator) scanBranch(b *parse.BranchNode) {
	e.scan(b.Pipe)
	e.scan(b.List)
	e.scan(b.ElseList)
}

// cost estimates the steps executing n takes, following template calls.
func (e *estimator) cost(n parse.Node) float64 {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return 0
		}
		c := 0.0
		for _, x := range n.Nodes {
			c += e.cost(x)
		}
		return c
	case *parse.IfNode:
		return 1 + e.cost(n.List) + e.cost(n.ElseList)
	case *parse.WithNode:
		return 1 + e.cost(n.List) + e.cost(n.ElseList)
	case *parse.RangeNode:
		return 1 + e.iterations*(1+e.cost(n.List)) + e.cost(n.ElseList)
	case *parse.TemplateNode:
		tree := e.trees[n.Name]
		if tree == nil {
			return 1
		}
		if e.active[n.Name] {
			e.recursive = true
			return 1
		}
		if c, ok := e.memo[n.Name]; ok {
			return c
		}
		e.active[n.Name] = true
		c := 1 + e.cost(tree.Root)
		e.active[n.Name] = false
		e.memo[n.Name] = c
		return c
	}
	return 1
}
