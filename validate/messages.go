package validate

import (
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// expand fills a message template's {field} and {param}.
func expand(tmpl, field, param string) string {
	return strings.NewReplacer("{field}", field, "{param}", param).Replace(tmpl)
}

// sizeRules are the rules whose wording depends on the field's kind: a length
// for strings, a count for slices and maps, a value for numbers.
var sizeRules = map[string][3]string{
	"min": {"at least", "at least", "at least"},
	"max": {"at most", "at most", "at most"},
	"len": {"exactly", "exactly", "equal to"},
	"gt":  {"more than", "more than", "greater than"},
	"gte": {"at least", "at least", "at least"},
	"lt":  {"less than", "fewer than", "less than"},
	"lte": {"at most", "at most", "at most"},
}

// fixedRules are rules whose message does not depend on the field's kind.
var fixedRules = map[string]string{
	"required":           "{field} is required",
	"required_if":        "{field} is required when {param}",
	"required_unless":    "{field} is required unless {param}",
	"required_with":      "{field} is required when {param} is present",
	"required_without":   "{field} is required when {param} is missing",
	"excluded_with":      "{field} must be absent when {param} is present",
	"oneof":              "{field} must be one of: {param}",
	"email":              "{field} must be a valid email address",
	"url":                "{field} must be a valid URL",
	"http_url":           "{field} must be a valid HTTP or HTTPS URL",
	"uri":                "{field} must be a valid URI",
	"uuid":               "{field} must be a valid UUID",
	"uuid4":              "{field} must be a valid version 4 UUID",
	"alpha":              "{field} must contain only letters",
	"alphanum":           "{field} must contain only letters and digits",
	"alphanumunicode":    "{field} must contain only letters and digits",
	"numeric":            "{field} must be a number",
	"number":             "{field} must be a number",
	"hexadecimal":        "{field} must be hexadecimal",
	"lowercase":          "{field} must be lowercase",
	"uppercase":          "{field} must be uppercase",
	"ascii":              "{field} must contain only ASCII characters",
	"printascii":         "{field} must contain only printable ASCII characters",
	"contains":           "{field} must contain '{param}'",
	"excludes":           "{field} must not contain '{param}'",
	"startswith":         "{field} must start with '{param}'",
	"endswith":           "{field} must end with '{param}'",
	"unique":             "{field} must not contain duplicates",
	"boolean":            "{field} must be a boolean",
	"json":               "{field} must be valid JSON",
	"jwt":                "{field} must be a valid JWT",
	"hostname":           "{field} must be a valid host name",
	"fqdn":               "{field} must be a fully qualified domain name",
	"ip":                 "{field} must be a valid IP address",
	"ipv4":               "{field} must be a valid IPv4 address",
	"ipv6":               "{field} must be a valid IPv6 address",
	"cidr":               "{field} must be a valid CIDR network",
	"datetime":           "{field} must be a date/time in the format {param}",
	"timezone":           "{field} must be a valid time zone",
	"e164":               "{field} must be a phone number in E.164 format",
	"base64":             "{field} must be valid base64",
	"iso3166_1_alpha2":   "{field} must be a two-letter country code",
	"bcp47_language_tag": "{field} must be a BCP 47 language tag",
	"semver":             "{field} must be a semantic version",
	"eqfield":            "{field} must equal {param}",
	"nefield":            "{field} must not equal {param}",
	"gtfield":            "{field} must be greater than {param}",
	"ltfield":            "{field} must be less than {param}",
	"eq":                 "{field} must equal {param}",
	"ne":                 "{field} must not equal {param}",
	"isdefault":          "{field} must be empty",
}

// message returns the built-in English message for a failing rule.
func message(fe validator.FieldError, field string) string {
	tag := fe.Tag()
	if words, ok := sizeRules[tag]; ok {
		param := fe.Param()
		switch fe.Kind() {
		case reflect.String:
			return field + " must be " + words[0] + " " + param + " " + plural(param, "character", "characters") + " long"
		case reflect.Slice, reflect.Array, reflect.Map:
			return field + " must have " + words[1] + " " + param + " " + plural(param, "item", "items")
		default:
			return field + " must be " + words[2] + " " + param
		}
	}
	if t, ok := fixedRules[tag]; ok {
		return expand(t, field, fe.Param())
	}
	if fe.Param() != "" {
		return field + " failed the rule " + tag + "=" + fe.Param()
	}
	return field + " failed the rule " + tag
}

func plural(n, one, many string) string {
	if n == "1" {
		return one
	}
	return many
}
