package sharedmain

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// Redaction of the configuration document. Every string that reaches the
// document passes through here; what looks like a credential is replaced
// by redacted, keeping the key it belongs to:
//
//   - the userinfo of a URL (scheme://user:password@host, and user:password@host
//     without a scheme) and the values of credential-like query parameters
//     (?token=..., ?api_key=...);
//   - every header value of an exporter (OTEL_EXPORTER_OTLP_*HEADERS, and
//     any "headers" member of a JSON value): such headers carry API keys
//     under names nobody can list;
//   - the value of a JSON member, or of a {"name": ..., "value": ...} header
//     (as a readiness probe's httpHeaders), whose name is credential-like
//     (credentialName).
//
// Strings holding a JSON object or array (OBSERVABILITY_CONFIG,
// SERVING_READINESS_PROBE, SERVING_LOGGING_CONFIG) are redacted member by
// member and shown as JSON.
const redacted = "<redacted>"

var (
	// urlUserinfo matches scheme:// and the userinfo after it, up to the
	// last @ of the authority.
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s"'<>]*@`)
	// queryParam matches one key=value of a query string.
	queryParam = regexp.MustCompile(`([?&;])([^=&#\s"';?]+)=([^&#\s"';]*)`)
)

// credentialWords are the parts of a name that mark it as a credential.
var credentialWords = []string{
	"authorization", "password", "passwd", "secret", "token", "cookie",
	"credential", "api_key", "apikey", "access_key", "private_key", "signature",
}

// credentialName reports whether a header, query parameter or JSON member
// named name holds a credential: Authorization, X-API-Key, access_token,
// password, ... Case and the separators -, _ and . do not matter.
func credentialName(name string) bool {
	n := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(name))
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactString hides URL userinfo and credential-like query parameter
// values in s, wherever they appear in it.
func redactString(s string) string {
	if !strings.ContainsAny(s, "@?&;") {
		return s
	}
	s = urlUserinfo.ReplaceAllString(s, "${1}"+redacted+"@")
	if at := strings.LastIndexByte(s, '@'); at > 0 && !strings.Contains(s, "://") &&
		!strings.ContainsAny(s, " \t\r\n") && !strings.ContainsRune(s[:at], '/') {
		s = redacted + s[at:] // user:password@host:port
	}
	return queryParam.ReplaceAllStringFunc(s, func(m string) string {
		sub := queryParam.FindStringSubmatch(m)
		if !credentialName(sub[2]) || sub[3] == "" {
			return m
		}
		return sub[1] + sub[2] + "=" + redacted
	})
}

// redactHeaderList redacts every value of "name=value,name=value" (the
// OTEL_EXPORTER_OTLP_HEADERS format); an item without = is hidden whole.
func redactHeaderList(s string) string {
	if strings.TrimSpace(s) == "" {
		return s
	}
	items := strings.Split(s, ",")
	for i, item := range items {
		name, _, ok := strings.Cut(item, "=")
		if !ok {
			items[i] = redacted
			continue
		}
		items[i] = name + "=" + redacted
	}
	return strings.Join(items, ",")
}

// looksJSON reports whether s holds a JSON object or array.
func looksJSON(s string) bool {
	t := strings.TrimSpace(s)
	return (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t))
}

// redactedJSON returns v (any value encoding/json accepts) as redacted JSON.
func redactedJSON(v any) (json.RawMessage, error) {
	b, err := marshalJSON(v)
	if err != nil {
		return nil, err
	}
	return redactJSONText(b)
}

// redactJSONText redacts the JSON document b.
func redactJSONText(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return marshalJSON(redactJSONValue(v))
}

// redactJSONValue redacts a decoded JSON value in place and returns it.
func redactJSONValue(v any) any {
	switch x := v.(type) {
	case string:
		return redactString(x)
	case []any:
		for i := range x {
			x[i] = redactJSONValue(x[i])
		}
	case map[string]any:
		headerName, _ := x["name"].(string)
		for k, val := range x {
			switch {
			case k == "value" && credentialName(headerName):
				x[k] = redacted
			case credentialName(k) && isScalar(val) && val != "":
				x[k] = redacted
			case strings.EqualFold(k, "headers"):
				x[k] = redactAllHeaders(val)
			default:
				x[k] = redactJSONValue(val)
			}
		}
	}
	return v
}

// redactAllHeaders hides every value of a "headers" member: an object of
// name to value, a list of {"name", "value"} objects, or a name=value list.
func redactAllHeaders(v any) any {
	switch x := v.(type) {
	case string:
		return redactHeaderList(x)
	case map[string]any:
		for k, val := range x {
			if isScalar(val) && val != "" {
				x[k] = redacted
			} else {
				x[k] = redactAllHeaders(val)
			}
		}
	case []any:
		for i, item := range x {
			if m, ok := item.(map[string]any); ok {
				if _, ok := m["value"]; ok {
					m["value"] = redacted
					continue
				}
			}
			x[i] = redactAllHeaders(item)
		}
	}
	return v
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, float64, bool:
		return true
	}
	return false
}
