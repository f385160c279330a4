package check

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"
)

// naming gives the key a struct field has in a document: its json tag (CloudFormation's types) or
// its API member name (the AWS SDK's types, which carry no tags: the field name, first letter
// lower-case, as the AWS CLI's --cli-input-json spells it). "" skips the field.
type naming func(reflect.StructField) string

func jsonTagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func apiMemberName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	r := []rune(f.Name)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// shapeChecker walks a decoded JSON document beside the Go type that describes it and reports every
// key the type does not have and every value of the wrong kind.
type shapeChecker struct {
	name naming
	// intrinsics accepts CloudFormation's intrinsic functions ({"Ref": ...}, {"Fn::...": ...})
	// wherever a value goes, and numbers where strings go (CloudFormation converts them).
	intrinsics bool
	errs       []string
}

func (c *shapeChecker) check(v any, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if c.intrinsics && isIntrinsic(v) {
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		return
	case reflect.Struct:
		c.checkStruct(v, t, path)
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			c.errorf("%s: want a list, got %T", path, v)
			return
		}
		for i, e := range list {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.errorf("%s: want a map, got %T", path, v)
			return
		}
		for k, e := range m {
			c.check(e, t.Elem(), path+"."+k)
		}
	default:
		c.checkScalar(v, t, path)
	}
}

func (c *shapeChecker) checkStruct(v any, t reflect.Type, path string) {
	m, ok := v.(map[string]any)
	if !ok {
		c.errorf("%s: want an object, got %T", path, v)
		return
	}
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		if n := c.name(t.Field(i)); n != "" {
			fields[n] = t.Field(i)
		}
	}
	for _, k := range sortedKeys(m) {
		f, ok := fields[k]
		if !ok {
			c.errorf("%s.%s: no such key in %s", path, k, t.Name())
			continue
		}
		c.check(m[k], f.Type, path+"."+k)
	}
}

func (c *shapeChecker) checkScalar(v any, t reflect.Type, path string) {
	ok := false
	switch t.Kind() {
	case reflect.String:
		_, ok = v.(string)
		if _, num := v.(float64); num && c.intrinsics {
			ok = true
		}
	case reflect.Bool:
		_, ok = v.(bool)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		_, ok = v.(float64)
	}
	if !ok {
		c.errorf("%s: want a %s, got %T (%v)", path, t.Kind(), v, v)
	}
}

func (c *shapeChecker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func isIntrinsic(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// checkShape returns the problems of doc against t, sorted.
func checkShape(doc any, t reflect.Type, name naming, intrinsics bool) []string {
	c := &shapeChecker{name: name, intrinsics: intrinsics}
	c.check(doc, t, "")
	sort.Strings(c.errs)
	return c.errs
}
