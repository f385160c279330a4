package filter

import (
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name     string
		pattern  string
		wantPath string
		wantErr  string // a part of the reason
	}{
		{"a misspelt operator is named, with a suggestion", `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numerc": [">", 0]}]}}}}`,
			"dynamodb.NewImage.TopScore.N[0]", `unknown operator "numerc" (did you mean "numeric"?)`},
		{"an unknown operator far from any is named", `{"a": [{"regex": "x"}]}`, "a[0]", `unknown operator "regex"; operators are`},
		{"invalid JSON is reported with its place", `{"a": ["x"`, "a", "unexpected end of the pattern"},
		{"a JSON syntax error is reported with its offset", `{"a": [x]}`, "a", "invalid JSON at byte"},
		{"an empty pattern is an error", ``, "", "unexpected end of the pattern"},
		{"a pattern that is not an object is an error", `["a"]`, "", "a pattern must be a JSON object, got an array"},
		{"text after the pattern is an error", `{"a": ["x"]} {}`, "", "the pattern is followed by an object"},
		{"an empty pattern object is an error", `{}`, "", "empty object"},
		{"an empty nested object is an error", `{"dynamodb": {}}`, "dynamodb", "empty object"},
		{"a scalar field value is an error with a hint", `{"eventName": "INSERT"}`, "eventName", `must be an array of values or an object, got string "INSERT" (write ["INSERT"]`},
		{"an empty value list is an error", `{"eventName": []}`, "eventName", "empty array"},
		{"a nested array is an error", `{"eventName": [["INSERT"]]}`, "eventName[0]", "nested arrays are not allowed"},
		{"an empty operator object is an error", `{"eventName": [{}]}`, "eventName[0]", "empty object: expected an operator"},
		{"two operators in one object are an error", `{"a": [{"prefix": "x", "suffix": "y"}]}`, "a[0]", `prefix: one operator per object, found also "suffix"`},
		{"a prefix that is not a string is an error", `{"a": [{"prefix": 1}]}`, "a[0]", "prefix: operand must be a string, got number 1"},
		{"a prefix object other than equals-ignore-case is an error", `{"a": [{"prefix": {"wildcard": "x"}}]}`, "a[0]", `prefix: operand must be a string or {"equals-ignore-case": string}`},
		{"a suffix with equals-ignore-case of a number is an error", `{"a": [{"suffix": {"equals-ignore-case": 1}}]}`, "a[0]", "suffix.equals-ignore-case: operand must be a string"},
		{"equals-ignore-case of a list is an error", `{"a": [{"equals-ignore-case": ["x"]}]}`, "a[0]", "equals-ignore-case: operand must be a string, got an array"},
		{"exists of a string is an error", `{"a": [{"exists": "yes"}]}`, "a[0]", `exists: operand must be true or false, got string "yes"`},
		{"numeric that is not an array is an error", `{"a": [{"numeric": 5}]}`, "a[0]", "numeric: operand must be an array"},
		{"an empty numeric array is an error", `{"a": [{"numeric": []}]}`, "a[0]", "numeric: empty array"},
		{"a numeric comparison without a number is an error", `{"a": [{"numeric": [">"]}]}`, "a[0]", `numeric: ">" needs a number after it`},
		{"a numeric bound given as a string is an error", `{"a": [{"numeric": [">", "5"]}]}`, "a[0]", `numeric: value after ">" must be a number, got string "5"`},
		{"an unknown numeric comparison is an error", `{"a": [{"numeric": ["!=", 5]}]}`, "a[0]", `numeric: unknown comparison "!="`},
		{"two lower bounds are a malformed range", `{"a": [{"numeric": [">", 5, ">", 6]}]}`, "a[0]", "numeric: malformed range"},
		{"an upper bound before a lower one is a malformed range", `{"a": [{"numeric": ["<", 5, ">", 1]}]}`, "a[0]", "numeric: malformed range"},
		{"equality in a range is a malformed range", `{"a": [{"numeric": ["=", 5, "<", 6]}]}`, "a[0]", "numeric: malformed range"},
		{"a range with its bounds crossed is a malformed range", `{"a": [{"numeric": [">", 10, "<", 5]}]}`, "a[0]", "numeric: malformed range: no number"},
		{"an empty open range is a malformed range", `{"a": [{"numeric": [">", 5, "<=", 5]}]}`, "a[0]", "numeric: malformed range: no number"},
		{"a number where a comparison belongs is an error", `{"a": [{"numeric": [">", 5, 6]}]}`, "a[0]", "numeric: expected a comparison (=, <, <=, >, >=) at position 2, got number 6"},
		{"anything-but of true is an error", `{"a": [{"anything-but": true}]}`, "a[0]", "anything-but: operand must be a string, a number"},
		{"an empty anything-but list is an error", `{"a": [{"anything-but": []}]}`, "a[0]", "anything-but: empty list"},
		{"a mixed anything-but list is an error", `{"a": [{"anything-but": ["x", 1]}]}`, "a[0]", "only strings or only numbers"},
		{"null in an anything-but list is an error", `{"a": [{"anything-but": ["x", null]}]}`, "a[0]", "anything-but: list values must be strings or numbers, got null"},
		{"an unknown operator inside anything-but is an error", `{"a": [{"anything-but": {"numeric": [">", 1]}}]}`, "a[0]", `anything-but: unknown operator "numeric" inside`},
		{"an empty anything-but prefix is an error", `{"a": [{"anything-but": {"prefix": ""}}]}`, "a[0]", "anything-but.prefix: operand must not be empty"},
		{"an anything-but suffix of a number is an error", `{"a": [{"anything-but": {"suffix": 1}}]}`, "a[0]", "anything-but.suffix: operand must be a string or a list of strings, got number 1"},
		{"an empty anything-but wildcard list is an error", `{"a": [{"anything-but": {"wildcard": []}}]}`, "a[0]", "anything-but.wildcard: empty list"},
		{"two operators inside anything-but are an error", `{"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}`, "a[0]", `anything-but.prefix: one operator per object, found also "suffix"`},
		{"consecutive wildcard stars are an error", `{"a": [{"wildcard": "a**b"}]}`, "a[0]", "wildcard: consecutive stars at byte 1"},
		{"a wildcard escaping a letter is an error", `{"a": [{"wildcard": "a\\nb"}]}`, "a[0]", "wildcard: invalid escape at byte 1"},
		{"a wildcard ending in a backslash is an error", `{"a": [{"wildcard": "a\\"}]}`, "a[0]", "wildcard: invalid escape"},
		{"a bad wildcard inside anything-but is an error", `{"a": [{"anything-but": {"wildcard": ["x", "**"]}}]}`, "a[0]", "wildcard: consecutive stars"},
		{"a cidr that is not a prefix is an error", `{"a": [{"cidr": "10.0.0.0"}]}`, "a[0]", `cidr: "10.0.0.0" is not an IP prefix`},
		{"$or that is not an array is an error", `{"$or": {"a": ["x"]}}`, "$or", "must be an array of at least two objects, got an object"},
		{"$or with one object is an error", `{"$or": [{"a": ["x"]}]}`, "$or", "must hold at least two objects, got 1"},
		{"a $or element that is not an object is an error", `{"$or": [{"a": ["x"]}, ["b"]]}`, "$or[1]", "must be an object, got an array"},
		{"an operator name as a field inside $or is an error", `{"$or": [{"a": ["x"]}, {"numeric": [1]}]}`, "$or[1].numeric", `"numeric" is an operator name`},
		{"an error inside a nested $or names its path", `{"dynamodb": {"$or": [{"Keys": {"k": {"S": [{"prefix": 1}]}}}, {"SizeBytes": [1]}]}}`, "dynamodb.$or[0].Keys.k.S[0]", "prefix: operand must be a string"},
		{"a field name with a dot is quoted in the path", `{"dynamodb": {"NewImage": {"a.b": {"S": [{"exists": 1}]}}}}`, `dynamodb.NewImage["a.b"].S[0]`, "exists: operand must be true or false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile([]byte(tc.pattern))
			if err == nil {
				t.Fatalf("Compile(%s) = %v, nil; want an error", tc.pattern, p)
			}
			pe := patternError(t, err)
			if pe.Path != tc.wantPath {
				t.Errorf("Compile(%s) error path = %q, want %q (error: %v)", tc.pattern, pe.Path, tc.wantPath, err)
			}
			if !strings.Contains(pe.Reason, tc.wantErr) {
				t.Errorf("Compile(%s) error = %q, want it to contain %q", tc.pattern, pe.Reason, tc.wantErr)
			}
		})
	}
}

func TestCompileErrorMessageNamesPathAndProblem(t *testing.T) {
	_, err := Compile([]byte(`{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numerc": [">", 0]}]}}}}`))
	want := `dynamodb.NewImage.TopScore.N[0]: unknown operator "numerc" (did you mean "numeric"?)`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Compile() error = %v, want it to start with %q", err, want)
	}
}

func TestCompileAccepts(t *testing.T) {
	cases := []struct{ name, pattern string }{
		{"every operator in one list", `{"a": ["x", 1, true, null, "", {"prefix": "p"}, {"suffix": "s"}, {"equals-ignore-case": "e"},
			{"wildcard": "w*"}, {"anything-but": "n"}, {"numeric": ["=", 1]}, {"exists": true}, {"cidr": "10.0.0.0/8"}, {"exactly": "x"},
			{"prefix": {"equals-ignore-case": "p"}}, {"suffix": {"equals-ignore-case": "s"}}]}`},
		{"every anything-but form", `{"a": [{"anything-but": 1}, {"anything-but": ["x", "y"]}, {"anything-but": [1, 2.5]},
			{"anything-but": {"prefix": "p"}}, {"anything-but": {"suffix": ["s", "t"]}}, {"anything-but": {"equals-ignore-case": ["E"]}},
			{"anything-but": {"wildcard": "*/lib/*"}}]}`},
		{"every numeric form", `{"a": [{"numeric": ["=", 0]}, {"numeric": [">", -1e3]}, {"numeric": [">=", 1]}, {"numeric": ["<", 2]},
			{"numeric": ["<=", 3]}, {"numeric": [">", 0, "<", 1]}, {"numeric": [">=", 5, "<=", 5]}, {"numeric": ["<", 1e400]}]}`},
		{"operator names as fields outside $or", `{"dynamodb": {"NewImage": {"prefix": {"S": ["x"]}, "numeric": {"N": ["1"]}}}}`},
		{"$or at every level", `{"$or": [{"a": ["x"]}, {"b": ["y"]}], "c": {"$or": [{"d": ["x"]}, {"e": ["y"], "$or": [{"f": [1]}, {"g": [2]}]}]}}`},
		{"an escaped wildcard", `{"a": [{"wildcard": "a\\*b\\\\c*"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compile([]byte(tc.pattern)); err != nil {
				t.Errorf("Compile(%s) error: %v", tc.pattern, err)
			}
		})
	}
}
