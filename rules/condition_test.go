package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// condTestNow is the time of evaluation of the table tests.
var condTestNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// tailorCases are tailor's own cases, not GrowthBook's: they cover every
// operator and the edge cases that GrowthBook's cases do not: paths, the order of evaluation, malformed parts, and tailor's own
// operators (evaluated at condTestNow).
var tailorCases = []struct {
	name string
	cond string
	doc  string
	want bool
}{
	// Paths.
	{"path: nested object", `{"a.b.c": 1}`, `{"a":{"b":{"c":1}}}`, true},
	{"path: array index", `{"a.1": "y"}`, `{"a":["x","y"]}`, true},
	{"path: index out of range", `{"a.2": {"$exists": true}}`, `{"a":["x","y"]}`, false},
	{"path: index with a leading zero", `{"a.01": {"$exists": true}}`, `{"a":["x","y"]}`, false},
	{"path: key with a leading zero", `{"a.01": "y"}`, `{"a":{"01":"y"}}`, true},
	{"path: numeric key", `{"a.0": "y"}`, `{"a":{"0":"y"}}`, true},
	{"path: negative index", `{"a.-1": {"$exists": true}}`, `{"a":["x","y"]}`, false},
	{"path: array length", `{"a.length": 2}`, `{"a":["x","y"]}`, true},
	{"path: empty array length", `{"a.length": 0}`, `{"a":[]}`, true},
	{"path: key named length", `{"a.length": "long"}`, `{"a":{"length":"long"}}`, true},
	{"path: length of a string", `{"a.length": {"$exists": true}}`, `{"a":"xyz"}`, false},
	{"path: through an array element", `{"a.1.b": 2}`, `{"a":[{"b":1},{"b":2}]}`, true},
	{"path: key on an array", `{"a.b": {"$exists": true}}`, `{"a":[{"b":1}]}`, false},
	{"path: past a string", `{"a.b": {"$exists": false}}`, `{"a":"b"}`, true},
	{"path: past a number", `{"a.b": null}`, `{"a":1}`, true},
	{"path: past null", `{"a.b": {"$type": "null"}}`, `{"a":null}`, true},
	{"path: empty key", `{"": 1}`, `{"":1}`, true},
	{"path: empty part", `{"a..b": 1}`, `{"a":{"":{"b":1}}}`, true},
	{"path: trailing dot", `{"a.": 1}`, `{"a":{"":1}}`, true},
	{"path: asterisk is not a wildcard", `{"a*": {"$exists": false}}`, `{"abc":1}`, true},
	{"path: question mark is not a wildcard", `{"a?c": {"$exists": false}}`, `{"abc":1}`, true},
	{"path: key with an asterisk", `{"a*": 1}`, `{"abc":2,"a*":1}`, true},
	{"path: key with a question mark", `{"x.a?c": 1}`, `{"x":{"abc":2,"a?c":1}}`, true},
	{"path: hash is not a count", `{"a.#": {"$exists": false}}`, `{"a":[1,2]}`, true},
	{"path: key with a hash", `{"#": 1}`, `{"#":1}`, true},
	{"path: key with a pipe", `{"a|b": 1}`, `{"a":{"b":2},"a|b":1}`, true},
	{"path: key with an at", `{"@this": {"$exists": false}}`, `{"a":1}`, true},
	{"path: key with an at, set", `{"@this": 1}`, `{"@this":1}`, true},
	{"path: key with a bang", `{"!true": {"$exists": false}}`, `{"a":1}`, true},
	{"path: key with a backslash", `{"a\\b": 1}`, `{"a\\b":1}`, true},
	{"path: key with a slash", `{"pages./pricing": {"$gte": 2}}`, `{"pages":{"/pricing":3}}`, true},
	{"path: key with an escaped quote", `{"say \"hi\"": 1}`, `{"say \"hi\"":1}`, true},
	{"path: key with a space", `{"a b.c": 1}`, `{"a b":{"c":1}}`, true},
	{"path: key with an equals sign", `{"a=b": 1}`, `{"a=b":1}`, true},
	{"path: unicode key", `{"café.prix": 5}`, `{"café":{"prix":5}}`, true},
	{"path: first of duplicate keys in the document", `{"a": 1}`, `{"a":1,"a":2}`, true},
	{"path: document null", `{"a": {"$exists": false}}`, `null`, true},
	{"path: document an array", `{"0": 1}`, `[1]`, true},
	{"path: document a string", `{"a": null}`, `"a"`, true},
	{"path: $-prefixed key is an attribute", `{"$groups": ["a"]}`, `{"$groups":["a"]}`, true},
	{"path: escapes in the condition", `{"k\u00e9.\/x": "v\u00e9"}`, `{"ké":{"/x":"vé"}}`, true},
	{"path: escapes in the document", `{"ké./x": "vé"}`, `{"k\u00e9":{"\/x":"v\u00e9"}}`, true},
	{"path: surrogate pair", `{"\ud83d\ude00": "\ud83d\ude00"}`, `{"😀":"😀"}`, true},
	{"path: invalid UTF-8 on both sides", "{\"a\xff\": \"b\xff\"}", "{\"a\xff\":\"b\xff\"}", true},
	{"path: invalid UTF-8 and its escape", "{\"a\": \"b\\u00ff\xff\"}", "{\"a\":\"b\\u00ff\xff\"}", true},

	// Values without operators.
	{"equal: string", `{"a": "x"}`, `{"a":"x"}`, true},
	{"equal: string with escapes", `{"a": "\u00e9\n"}`, `{"a":"é\n"}`, true},
	{"equal: number and float", `{"a": 1}`, `{"a":1.0}`, true},
	{"equal: exponent", `{"a": 100}`, `{"a":1e2}`, true},
	{"equal: number and string", `{"a": 1}`, `{"a":"1"}`, false},
	{"equal: true", `{"a": true}`, `{"a":true}`, true},
	{"equal: true and 1", `{"a": true}`, `{"a":1}`, false},
	{"equal: null and missing", `{"a": null}`, `{}`, true},
	{"equal: array deep", `{"a": [1, [2, {"b": 3}]]}`, `{"a":[1,[2,{"b":3}]]}`, true},
	{"equal: array shorter", `{"a": [1, 2]}`, `{"a":[1]}`, false},
	{"equal: array longer", `{"a": [1]}`, `{"a":[1,2]}`, false},
	{"equal: object key order", `{"a": {"x": 1, "y": 2}}`, `{"a":{"y":2,"x":1}}`, true},
	{"equal: object nested", `{"a": {"x": {"y": [1]}}}`, `{"a":{"x":{"y":[1]}}}`, true},
	{"equal: object with null", `{"a": {"x": null}}`, `{"a":{}}`, false},
	{"equal: large object", `{"a": {"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10}}`, `{"a":{"k10":10,"k9":9,"k8":8,"k7":7,"k6":6,"k5":5,"k4":4,"k3":3,"k2":2,"k1":1}}`, true},
	{"equal: large object, one differs", `{"a": {"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10}}`, `{"a":{"k10":10,"k9":9,"k8":8,"k7":7,"k6":6,"k5":5,"k4":4,"k3":3,"k2":2,"k1":0}}`, false},
	{"equal: object mixing $ keys is a value", `{"a": {"$gt": 1, "b": 2}}`, `{"a":{"$gt":1,"b":2}}`, true},
	{"equal: empty object passes", `{"a": {}}`, `{}`, true},
	{"equal: duplicate key, last counts", `{"a": 1, "a": 2}`, `{"a":2}`, true},

	// $eq, $ne.
	{"$eq: number", `{"a": {"$eq": 2}}`, `{"a":2}`, true},
	{"$eq: null matches missing", `{"a": {"$eq": null}}`, `{}`, true},
	{"$eq: array never equal", `{"a": {"$eq": [1]}}`, `{"a":[1]}`, false},
	{"$ne: string", `{"a": {"$ne": "x"}}`, `{"a":"y"}`, true},
	{"$ne: missing", `{"a": {"$ne": "x"}}`, `{}`, true},
	{"$ne: object always unequal", `{"a": {"$ne": {"b": 1}}}`, `{"a":{"b":1}}`, true},

	// $gt, $gte, $lt, $lte.
	{"$gt: numbers", `{"a": {"$gt": 1.5}}`, `{"a":2}`, true},
	{"$gt: negative", `{"a": {"$gt": -1}}`, `{"a":-2}`, false},
	{"$gte: equal", `{"a": {"$gte": 2}}`, `{"a":2.0}`, true},
	{"$lt: strings", `{"a": {"$lt": "b"}}`, `{"a":"a"}`, true},
	{"$lt: prefix is less", `{"a": {"$lt": "ab"}}`, `{"a":"a"}`, true},
	{"$lte: strings equal", `{"a": {"$lte": "b"}}`, `{"a":"b"}`, true},
	{"$gt: numeric string and number", `{"a": {"$gt": 1}}`, `{"a":"2"}`, true},
	{"$gt: other string and number", `{"a": {"$gt": 1}}`, `{"a":"two"}`, false},
	{"$lt: missing is null, which is 0", `{"a": {"$lt": 1}}`, `{}`, true},
	{"$lt: null is 0", `{"a": {"$lt": 1}}`, `{"a":null}`, true},
	{"$lt: null is not below 0", `{"a": {"$lt": 0}}`, `{"a":null}`, false},
	{"$gt: boolean argument", `{"a": {"$gt": false}}`, `{"a":true}`, true},
	{"$gt: UTF-16 order", `{"a": {"$gt": "\uffff"}}`, `{"a":"😀"}`, false},
	{"$lt: UTF-16 order", `{"a": {"$lt": "\uffff"}}`, `{"a":"😀"}`, true},
	{"$lt: accents", `{"a": {"$lt": "é"}}`, `{"a":"e"}`, true},
	{"$gt: dates as strings", `{"a": {"$gt": "2026-01-01"}}`, `{"a":"2026-02-01T00:00:00Z"}`, true},

	// $in, $nin, $ini, $nini.
	{"$in: string", `{"a": {"$in": ["x", "y"]}}`, `{"a":"y"}`, true},
	{"$in: number", `{"a": {"$in": [1, 2]}}`, `{"a":2.0}`, true},
	{"$in: null and missing", `{"a": {"$in": [null]}}`, `{}`, true},
	{"$in: boolean", `{"a": {"$in": [false]}}`, `{"a":false}`, true},
	{"$in: true is not 1", `{"a": {"$in": [1]}}`, `{"a":true}`, false},
	{"$in: array overlap", `{"a": {"$in": ["x", "y"]}}`, `{"a":["z","y"]}`, true},
	{"$in: array without overlap", `{"a": {"$in": ["x", "y"]}}`, `{"a":["z"]}`, false},
	{"$in: array of arrays never", `{"a": {"$in": [[1]]}}`, `{"a":[[1]]}`, false},
	{"$in: not an array", `{"a": {"$in": "x"}}`, `{"a":"x"}`, false},
	{"$in: empty", `{"a": {"$in": []}}`, `{"a":"x"}`, false},
	{"$nin: missing", `{"a": {"$nin": ["x"]}}`, `{}`, true},
	{"$nin: array overlap", `{"a": {"$nin": ["x"]}}`, `{"a":["x","y"]}`, false},
	{"$nin: not an array", `{"a": {"$nin": "x"}}`, `{"a":"y"}`, false},
	{"$nin: not an array, negated", `{"a": {"$not": {"$nin": "x"}}}`, `{"a":"y"}`, true},
	{"$ini: case", `{"a": {"$ini": ["Hello"]}}`, `{"a":"hELLO"}`, true},
	{"$ini: unicode case", `{"a": {"$ini": ["ÉCOLE"]}}`, `{"a":"école"}`, true},
	{"$ini: Kelvin sign", `{"a": {"$ini": ["\u212a"]}}`, `{"a":"k"}`, true},
	{"$ini: long string", `{"a": {"$ini": ["` + strings.Repeat("Ab", 50) + `"]}}`, `{"a":"` + strings.Repeat("aB", 50) + `"}`, true},
	{"$ini: number", `{"a": {"$ini": [1]}}`, `{"a":1}`, true},
	{"$ini: array attribute", `{"a": {"$ini": ["X"]}}`, `{"a":["y","x"]}`, true},
	{"$ini: not an array", `{"a": {"$ini": "x"}}`, `{"a":"x"}`, false},
	{"$nini: case", `{"a": {"$nini": ["Hello"]}}`, `{"a":"HELLO"}`, false},
	{"$nini: missing", `{"a": {"$nini": ["Hello"]}}`, `{}`, true},

	// $all, $alli.
	{"$all: pass", `{"a": {"$all": ["x", "y"]}}`, `{"a":["y","z","x"]}`, true},
	{"$all: one missing", `{"a": {"$all": ["x", "y"]}}`, `{"a":["x"]}`, false},
	{"$all: empty", `{"a": {"$all": []}}`, `{"a":[]}`, true},
	{"$all: not an array attribute", `{"a": {"$all": ["x"]}}`, `{"a":"x"}`, false},
	{"$all: operator objects", `{"a": {"$all": [{"$gt": 5}, {"$lt": 0}]}}`, `{"a":[-1,10]}`, true},
	{"$all: deep values", `{"a": {"$all": [[1, 2]]}}`, `{"a":[[1,2],3]}`, true},
	{"$alli: case", `{"a": {"$alli": ["X", "y"]}}`, `{"a":["x","Y"]}`, true},
	{"$alli: numbers", `{"a": {"$alli": [1]}}`, `{"a":[1]}`, true},
	{"$all: argument not an array fails the condition", `{"$not": {"a": {"$all": "x"}}}`, `{"a":["x"]}`, false},

	// $elemMatch.
	{"$elemMatch: operators", `{"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}`, `{"a":[0,2,4]}`, true},
	{"$elemMatch: operators, none", `{"a": {"$elemMatch": {"$gt": 1, "$lt": 2}}}`, `{"a":[0,2,4]}`, false},
	{"$elemMatch: condition", `{"a": {"$elemMatch": {"b": 2, "c": {"$exists": false}}}}`, `{"a":[{"b":2,"c":1},{"b":2}]}`, true},
	{"$elemMatch: skips null", `{"a": {"$elemMatch": {"$exists": false}}}`, `{"a":[null,1]}`, false},
	{"$elemMatch: tests falsy values", `{"a": {"$elemMatch": {"$eq": 0}}}`, `{"a":[null,0]}`, true},
	{"$elemMatch: empty object", `{"a": {"$elemMatch": {}}}`, `{"a":[null,1]}`, true},
	{"$elemMatch: empty array", `{"a": {"$elemMatch": {}}}`, `{"a":[]}`, false},
	{"$elemMatch: not an array", `{"a": {"$elemMatch": {"$eq": 1}}}`, `{"a":1}`, false},
	{"$elemMatch: $or on fields", `{"a": {"$elemMatch": {"$or": [{"b": 1}, {"b": 2}]}}}`, `{"a":[{"b":2}]}`, true},
	{"$elemMatch: nested", `{"a": {"$elemMatch": {"b": {"$elemMatch": {"$eq": 3}}}}}`, `{"a":[{"b":[1]},{"b":[2,3]}]}`, true},
	{"$elemMatch: not an object fails the condition", `{"$not": {"a": {"$elemMatch": 1}}}`, `{"a":[1]}`, false},

	// $size.
	{"$size: number", `{"a": {"$size": 2}}`, `{"a":[1,[2,3]]}`, true},
	{"$size: operators", `{"a": {"$size": {"$gte": 1, "$lt": 3}}}`, `{"a":[1,2]}`, true},
	{"$size: string argument", `{"a": {"$size": "2"}}`, `{"a":[1,2]}`, false},
	{"$size: not an array", `{"a": {"$size": 0}}`, `{"a":""}`, false},
	{"$size: missing", `{"a": {"$size": 0}}`, `{}`, false},

	// $exists, $type.
	{"$exists: null is not there", `{"a": {"$exists": true}}`, `{"a":null}`, false},
	{"$exists: false value is there", `{"a": {"$exists": true}}`, `{"a":false}`, true},
	{"$exists: truthy argument", `{"a": {"$exists": 1}}`, `{"a":0}`, true},
	{"$exists: falsy argument", `{"a": {"$exists": ""}}`, `{}`, true},
	{"$type: array", `{"a": {"$type": "array"}}`, `{"a":[]}`, true},
	{"$type: object", `{"a": {"$type": "object"}}`, `{"a":{}}`, true},
	{"$type: array is not object", `{"a": {"$type": "object"}}`, `{"a":[]}`, false},
	{"$type: missing is null", `{"a": {"$type": "null"}}`, `{}`, true},
	{"$type: undefined never", `{"a": {"$type": "undefined"}}`, `{}`, false},
	{"$type: not a string fails the condition", `{"$not": {"a": {"$type": 1}}}`, `{}`, false},

	// $regex, $regexi.
	{"$regex: unanchored", `{"a": {"$regex": "b+"}}`, `{"a":"abbc"}`, true},
	{"$regex: anchored", `{"a": {"$regex": "^b"}}`, `{"a":"abc"}`, false},
	{"$regex: case", `{"a": {"$regex": "B"}}`, `{"a":"abc"}`, false},
	{"$regexi: case", `{"a": {"$regexi": "B"}}`, `{"a":"abc"}`, true},
	{"$regex: not a string attribute", `{"a": {"$regex": "1"}}`, `{"a":1}`, false},
	{"$regex: invalid pattern", `{"a": {"$regex": "("}}`, `{"a":"("}`, false},
	{"$regex: invalid pattern, negated", `{"a": {"$not": {"$regex": "("}}}`, `{"a":"("}`, true},
	{"$regex: unsupported syntax is invalid", `{"a": {"$regex": "(?=x)"}}`, `{"a":"x"}`, false},
	{"$regex: not a string fails the condition", `{"$not": {"a": {"$regex": 1}}}`, `{"a":"1"}`, false},

	// $not on a value.
	{"$not: operators", `{"a": {"$not": {"$gt": 5}}}`, `{"a":3}`, true},
	{"$not: value", `{"a": {"$not": 5}}`, `{"a":5}`, false},
	{"$not: missing", `{"a": {"$not": {"$gt": 5}}}`, `{}`, true},

	// Versions.
	{"$veq: leading v", `{"v": {"$veq": "v1.2.3"}}`, `{"v":"1.2.3"}`, true},
	{"$vgt: pre-release before release", `{"v": {"$vgt": "1.2.3-rc.1"}}`, `{"v":"1.2.3"}`, true},
	{"$vlt: numeric parts", `{"v": {"$vlt": "1.10.0"}}`, `{"v":"1.9.0"}`, true},
	{"$vgte: build ignored", `{"v": {"$vgte": "1.2.3+7"}}`, `{"v":"1.2.3+1"}`, true},
	{"$vlte: two parts", `{"v": {"$vlte": "1.2"}}`, `{"v":"1.2"}`, true},
	{"$vne: number with string", `{"v": {"$vne": "2"}}`, `{"v":2}`, true},
	{"$veq: numbers", `{"v": {"$veq": 2.5}}`, `{"v":2.5}`, true},
	{"$vgt: numbers", `{"v": {"$vgt": 2}}`, `{"v":10}`, true},
	{"$veq: boolean argument", `{"v": {"$veq": true}}`, `{"v":true}`, false},
	{"$vne: boolean argument", `{"v": {"$vne": true}}`, `{"v":true}`, true},
	{"$vgt: long version", `{"v": {"$vgt": "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20"}}`, `{"v":"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.21"}`, true},
	{"$veq: newline keeps build", `{"v": {"$veq": "1+a\nb"}}`, `{"v":"1+a\nb"}`, true},
	{"$vne: newline keeps build", `{"v": {"$vne": "1"}}`, `{"v":"1+a\nb"}`, true},

	// Logic and the order of evaluation.
	{"$and: all", `{"$and": [{"a": 1}, {"b": 2}]}`, `{"a":1,"b":2}`, true},
	{"$or: one", `{"$or": [{"a": 2}, {"b": 2}]}`, `{"a":1,"b":2}`, true},
	{"$or: empty", `{"$or": []}`, `{}`, true},
	{"$nor: empty", `{"$nor": []}`, `{}`, false},
	{"$nor: none", `{"$nor": [{"a": 2}]}`, `{"a":1}`, true},
	{"$not: condition", `{"$not": {"a": 1}}`, `{"a":2}`, true},
	{"$not: empty condition", `{"$not": {}}`, `{}`, false},
	{"unknown operator fails", `{"a": {"$foo": 1}}`, `{"a":1}`, false},
	{"unknown operator fails under $not", `{"$not": {"a": {"$foo": 1}}}`, `{"a":1}`, false},
	{"unknown operator fails under $nor", `{"$nor": [{"a": {"$foo": 1}}]}`, `{"a":1}`, false},
	{"unknown operator in $or beside a pass", `{"$or": [{"a": {"$foo": 1}}, {"a": 1}]}`, `{"a":1}`, true},
	{"unknown operator in $or beside a fail", `{"$not": {"$or": [{"a": {"$foo": 1}}, {"a": 2}]}}`, `{"a":1}`, false},
	{"unknown operator beside a fail, negated", `{"$not": {"a": {"$foo": 1, "$eq": 2}}}`, `{"a":1}`, true},
	{"$savedGroup is not supported", `{"$not": {"$savedGroup": {"id": "g"}}}`, `{}`, false},
	{"logical operator on a value never matches", `{"a": {"$or": [{"a": 1}]}}`, `{"a":1}`, false},
	{"logical operator on a value, negated", `{"a": {"$not": {"$and": []}}}`, `{"a":1}`, true},
	{"malformed $not fails the condition", `{"$not": {"$not": null}}`, `{}`, false},
	{"malformed $and fails the condition", `{"$not": {"$and": {}}}`, `{}`, false},
	{"malformed element of $or fails the condition", `{"$not": {"$or": [{"a": 2}, 1]}}`, `{"a":1}`, false},
	{"malformed part after a passing one in $or", `{"$or": [{"a": 1}, {"$not": null}]}`, `{"a":1}`, true},
	{"malformed part before a passing one in $or", `{"$or": [{"$not": null}, {"a": 1}]}`, `{"a":1}`, false},
	{"malformed part after a failing one", `{"$not": {"a": 2, "b": {"$regex": 1}}}`, `{"a":1}`, true},
	{"malformed part before a failing one", `{"$not": {"b": {"$regex": 1}, "a": 2}}`, `{"a":1}`, false},
	{"condition not an object", `[]`, `{}`, false},
	{"null condition", `null`, `{}`, false},
	{"empty condition", `{}`, `{}`, true},

	// $within, $olderThan (now is 2026-03-01T12:00:00Z).
	{"$within: inside", `{"t": {"$within": "72h"}}`, `{"t":"2026-02-27T12:00:00Z"}`, true},
	{"$within: just outside", `{"t": {"$within": "72h"}}`, `{"t":"2026-02-26T11:59:59.999Z"}`, false},
	{"$within: days", `{"t": {"$within": "3d"}}`, `{"t":"2026-02-26T12:00:01Z"}`, true},
	{"$within: days and hours", `{"t": {"$within": "1d12h"}}`, `{"t":"2026-02-28T00:00:00Z"}`, true},
	{"$within: future", `{"t": {"$within": "1h"}}`, `{"t":"2026-03-02T00:00:00Z"}`, true},
	{"$within: offset", `{"t": {"$within": "1h"}}`, `{"t":"2026-03-01T13:30:00+02:00"}`, true},
	{"$within: negative offset", `{"t": {"$within": "1h"}}`, `{"t":"2026-03-01T06:30:00-05:00"}`, true},
	{"$within: fractional seconds", `{"t": {"$within": "1s"}}`, `{"t":"2026-03-01T11:59:59.000000001Z"}`, true},
	{"$within: missing", `{"t": {"$within": "1h"}}`, `{}`, false},
	{"$within: not a time", `{"t": {"$within": "1h"}}`, `{"t":"yesterday"}`, false},
	{"$within: a number", `{"t": {"$within": "1h"}}`, `{"t":1772366400}`, false},
	{"$within: bad duration fails the condition", `{"$not": {"t": {"$within": "1w"}}}`, `{"t":"2026-03-01T12:00:00Z"}`, false},
	{"$olderThan: outside", `{"t": {"$olderThan": "30d"}}`, `{"t":"2026-01-01T00:00:00Z"}`, true},
	{"$olderThan: inside", `{"t": {"$olderThan": "30d"}}`, `{"t":"2026-02-15T00:00:00Z"}`, false},
	{"$olderThan: missing", `{"t": {"$olderThan": "30d"}}`, `{}`, false},
	{"$olderThan: missing, negated", `{"t": {"$not": {"$olderThan": "30d"}}}`, `{}`, true},

	// $count.
	{"$count: where and window", `{"r": {"$count": {"where": {"name": "purchase"}, "within": "2160h", "is": {"$gte": 2}}}}`, condTestEvents, true},
	{"$count: where and shorter window", `{"r": {"$count": {"where": {"name": "purchase"}, "within": "10d", "is": {"$gte": 2}}}}`, condTestEvents, false},
	{"$count: exact number", `{"r": {"$count": {"where": {"name": "purchase"}, "is": 3}}}`, condTestEvents, true},
	{"$count: everything", `{"r": {"$count": {"is": 5}}}`, condTestEvents, true},
	{"$count: window only", `{"r": {"$count": {"within": "1d", "is": 1}}}`, condTestEvents, true},
	{"$count: other time field", `{"r": {"$count": {"within": "1d", "at": "props.at", "is": 1}}}`, condTestEvents, true},
	{"$count: where with operators", `{"r": {"$count": {"where": {"name": {"$in": ["page", "add_to_cart"]}}, "is": 2}}}`, condTestEvents, true},
	{"$count: where with $or", `{"r": {"$count": {"where": {"$or": [{"name": "page"}, {"revenue": {"$gt": 50}}]}, "is": 2}}}`, condTestEvents, true},
	{"$count: scalars with operators", `{"a": {"$count": {"where": {"$gt": 1}, "is": 2}}}`, `{"a":[1,2,3]}`, true},
	{"$count: null elements count", `{"a": {"$count": {"is": 3}}}`, `{"a":[1,null,2]}`, true},
	{"$count: missing counts none", `{"r": {"$count": {"is": 0}}}`, `{}`, true},
	{"$count: null counts none", `{"r": {"$count": {"is": {"$lt": 1}}}}`, `{"r":null}`, true},
	{"$count: not an array", `{"r": {"$count": {"is": 0}}}`, `{"r":{}}`, false},
	{"$count: negated", `{"r": {"$not": {"$count": {"where": {"name": "purchase"}, "is": {"$gte": 1}}}}}`, condTestEvents, false},
	{"$count: without is fails the condition", `{"$not": {"r": {"$count": {"where": {"name": "x"}}}}}`, condTestEvents, false},
	{"$count: unknown key fails the condition", `{"$not": {"r": {"$count": {"is": 1, "when": "1d"}}}}`, condTestEvents, false},
	{"$count: unknown operator in where", `{"$not": {"r": {"$count": {"where": {"name": {"$foo": 1}}, "is": 0}}}}`, condTestEvents, false},
	{"$count: on length", `{"r.length": 5}`, condTestEvents, true},
}

const condTestEvents = `{"r":[
	{"name":"purchase","time":"2025-10-01T00:00:00Z","revenue":10},
	{"name":"page","time":"2026-02-01T00:00:00Z"},
	{"name":"purchase","time":"2026-02-10T10:00:00+01:00","revenue":80},
	{"name":"add_to_cart","time":"not a time","props":{"at":"2026-03-01T00:00:00Z"}},
	{"name":"purchase","time":"2026-03-01T11:00:00Z","revenue":20}
]}`

func TestCondition(t *testing.T) {
	t.Parallel()
	for _, tc := range tailorCases {
		c, _ := CompileCondition([]byte(tc.cond))
		if c == nil {
			t.Errorf("%s: CompileCondition(%s) = nil", tc.name, tc.cond)
			continue
		}
		if got := c.MatchAt([]byte(tc.doc), condTestNow); got != tc.want {
			t.Errorf("%s: %s.MatchAt(%s) = %v, want %v", tc.name, tc.cond, tc.doc, got, tc.want)
		}
		if c.usesTime {
			continue
		}
		got, err := EvalCondition([]byte(tc.cond), []byte(tc.doc))
		if err != nil || got != tc.want {
			t.Errorf("%s: EvalCondition(%s, %s) = %v, %v, want %v", tc.name, tc.cond, tc.doc, got, err, tc.want)
		}
	}
}

func TestConditionSavedGroups(t *testing.T) {
	t.Parallel()
	groups := map[string][]any{
		"staff":  {"ann", "bob"},
		"ids":    {1, int64(2), 3.5, json.Number("4"), uint8(5)},
		"flags":  {true, nil},
		"nested": {[]any{"x"}, map[string]any{"y": 1}},
	}
	tests := []struct {
		cond, doc string
		want      bool
	}{
		{`{"u": {"$inGroup": "staff"}}`, `{"u":"ann"}`, true},
		{`{"u": {"$inGroup": "staff"}}`, `{"u":"Ann"}`, false},
		{`{"u": {"$inGroup": "staff"}}`, `{"u":["x","bob"]}`, true},
		{`{"u": {"$notInGroup": "staff"}}`, `{"u":"cy"}`, true},
		{`{"u": {"$notInGroup": "staff"}}`, `{}`, true},
		{`{"u": {"$inGroup": "ids"}}`, `{"u":2}`, true},
		{`{"u": {"$inGroup": "ids"}}`, `{"u":3.5}`, true},
		{`{"u": {"$inGroup": "ids"}}`, `{"u":4}`, true},
		{`{"u": {"$inGroup": "ids"}}`, `{"u":5}`, true},
		{`{"u": {"$inGroup": "ids"}}`, `{"u":"1"}`, false},
		{`{"u": {"$inGroup": "flags"}}`, `{}`, true},
		{`{"u": {"$inGroup": "flags"}}`, `{"u":true}`, true},
		{`{"u": {"$inGroup": "flags"}}`, `{"u":false}`, false},
		{`{"u": {"$inGroup": "nested"}}`, `{"u":["x"]}`, false},
		{`{"u": {"$inGroup": "unknown"}}`, `{"u":"ann"}`, false},
		{`{"u": {"$notInGroup": "unknown"}}`, `{"u":"ann"}`, true},
		{`{"$or": [{"u": {"$inGroup": "staff"}}, {"v": {"$inGroup": "staff"}}]}`, `{"v":"bob"}`, true},
	}
	for _, tc := range tests {
		got, err := EvalCondition([]byte(tc.cond), []byte(tc.doc), WithSavedGroups(groups))
		if err != nil || got != tc.want {
			t.Errorf("EvalCondition(%s, %s) = %v, %v, want %v", tc.cond, tc.doc, got, err, tc.want)
		}
	}
	// Without saved groups, every group is empty.
	if got, _ := EvalCondition([]byte(`{"u": {"$notInGroup": "staff"}}`), []byte(`{"u":"ann"}`)); !got {
		t.Errorf("$notInGroup without groups = false, want true")
	}
}

// TestConditionProblems checks what CompileCondition reports: every problem,
// in source order, with its place.
func TestConditionProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cond string
		want []string // "line:col: path: message" (a prefix of the message)
	}{
		{"sound", `{"a": {"$in": [1]}, "$or": [{"b": {"$regex": "^x"}}]}`, nil},
		{"unknown operator", `{"a": {"$foo": 1}}`, []string{"1:8: /a/$foo: unknown operator $foo"}},
		{"unknown condition operator", `{"$nro": []}`, []string{"1:2: /$nro: unknown operator $nro (read as an attribute path)"}},
		{"$in not an array", `{"a": {"$in": "x"}}`, []string{"1:15: /a/$in: $in needs an array, not a string"}},
		{"$in with an array", `{"a": {"$in": [1, [2]]}}`, []string{"1:19: /a/$in/1: an array in $in never matches"}},
		{"$size with a string", `{"a": {"$size": "3"}}`, []string{"1:17: /a/$size: $size needs a number or an object of operators, not a string"}},
		{"$regex not a string", `{"a": {"$regex": 1}}`, []string{"1:18: /a/$regex: $regex needs a string, not a number"}},
		{"invalid regex", `{"a": {"$regex": "a("}}`, []string{"1:18: /a/$regex: invalid regular expression: error parsing regexp: missing closing ): `a(`"}},
		{"bad duration", `{"a": {"$within": "7 days"}}`, []string{`1:19: /a/$within: bad duration "7 days"`}},
		{"negative duration", `{"a": {"$olderThan": "-1h"}}`, []string{`1:22: /a/$olderThan: bad duration "-1h"`}},
		{"duration a number", `{"a": {"$within": 7}}`, []string{`1:19: /a/$within: a duration is a string such as "72h" or "7d", not a number`}},
		{"$type unknown", `{"a": {"$type": "undefined"}}`, []string{`1:17: /a/$type: unknown type "undefined"`}},
		{"$type not a string", `{"a": {"$type": 1}}`, []string{`1:17: /a/$type: $type needs a type name, not a number`}},
		{"$exists not a boolean", `{"a": {"$exists": 1}}`, []string{`1:19: /a/$exists: $exists needs true or false, not a number`}},
		{"$eq with an array", `{"a": {"$eq": [1]}}`, []string{`1:15: /a/$eq: $eq with an array never matches`}},
		{"$gt with a boolean", `{"a": {"$gt": true}}`, []string{`1:15: /a/$gt: $gt needs a number or a string, not a boolean`}},
		{"$veq with null", `{"a": {"$veq": null}}`, []string{`1:16: /a/$veq: $veq needs a version string, not null`}},
		{"$elemMatch not an object", `{"a": {"$elemMatch": []}}`, []string{`1:22: /a/$elemMatch: $elemMatch needs an object, not an array`}},
		{"$all not an array", `{"a": {"$all": {}}}`, []string{`1:16: /a/$all: $all needs an array, not an object`}},
		{"$inGroup not a string", `{"a": {"$inGroup": 1}}`, []string{`1:20: /a/$inGroup: $inGroup needs the name of a saved group, not a number`}},
		{"$inGroup unknown", `{"a": {"$inGroup": "g"}}`, []string{`1:20: /a/$inGroup: unknown saved group "g": no saved groups were given`}},
		{"$or on a value", `{"a": {"$or": []}}`, []string{`1:8: /a/$or: $or applies to conditions, not to an attribute's value`}},
		{"$and not an array", `{"$and": {}}`, []string{`1:10: /$and: $and needs an array of conditions, not an object`}},
		{"$or element not an object", `{"$or": [{}, 2]}`, []string{`1:14: /$or/1: a condition must be an object, not a number`}},
		{"$not not an object", `{"$not": null}`, []string{`1:10: /$not: a condition must be an object, not null`}},
		{"not an object", `[1]`, []string{`1:1: a condition must be an object, not an array`}},
		{"$savedGroup", `{"$savedGroup": {"id": "x"}}`, []string{`1:2: /$savedGroup: $savedGroup is not supported`}},
		{"mixed operators and names", `{"a": {"$gt": 1, "b": 2}}`, []string{`1:8: /a/$gt: $gt among attribute names: the object is compared as a value`}},
		{"duplicate key", `{"a": 1, "a": 2}`, []string{`1:10: /a: duplicate key: the last value counts`}},
		{"escaped pointer", `{"a/b~c": {"$foo": 1}}`, []string{`1:12: /a~1b~0c/$foo: unknown operator $foo`}},
		{"$count problems", `{"r": {"$count": {"where": 1, "within": "x", "at": 2, "by": 1}}}`, []string{
			`1:28: /r/$count/where: "where" needs an object, not a number`,
			`1:41: /r/$count/within: bad duration "x"`,
			`1:52: /r/$count/at: "at" needs the path of a time in the elements, not a number`,
			`1:55: /r/$count/by: unknown key "by" in $count`,
			`1:18: /r/$count: $count needs "is"`,
		}},
		{"$count at without within", `{"r": {"$count": {"at": "t", "is": 1}}}`, []string{`1:19: /r/$count/at: "at" has no effect without "within"`}},
		{"$count is a string", `{"r": {"$count": {"is": "1"}}}`, []string{`1:25: /r/$count/is: "is" needs a number or an object of operators, not a string`}},
		{"$count not an object", `{"r": {"$count": 1}}`, []string{`1:18: /r/$count: $count needs an object`}},
		{"all problems, in order", "{\n  \"a\": {\"$foo\": 1},\n  \"$or\": [{\"b\": {\"$in\": 2}}],\n  \"c\": {\"$regex\": \"(\"}\n}", []string{
			`2:9: /a/$foo: unknown operator $foo`,
			`3:25: /$or/0/b/$in: $in needs an array, not a number`,
			`4:19: /c/$regex: invalid regular expression`,
		}},
	}
	for _, tc := range tests {
		c, err := CompileCondition([]byte(tc.cond))
		if c == nil {
			t.Errorf("%s: CompileCondition(%s) = nil, %v", tc.name, tc.cond, err)
			continue
		}
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: CompileCondition(%s): %v", tc.name, tc.cond, err)
			}
			continue
		}
		var list ConditionErrors
		if !errors.As(err, &list) {
			t.Errorf("%s: CompileCondition(%s) = %v, want ConditionErrors", tc.name, tc.cond, err)
			continue
		}
		if len(list) != len(tc.want) {
			t.Errorf("%s: CompileCondition(%s): %d problems, want %d:\n%v", tc.name, tc.cond, len(list), len(tc.want), err)
			continue
		}
		// The problems are sorted by offset; compare as sets of lines.
		for _, w := range tc.want {
			found := false
			for _, e := range list {
				if strings.HasPrefix(e.Error(), w) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: CompileCondition(%s): no problem %q in\n%v", tc.name, tc.cond, w, err)
			}
		}
	}
}

func TestConditionErrors(t *testing.T) {
	t.Parallel()
	// Invalid JSON: no Condition, one error with its place.
	c, err := CompileCondition([]byte("{\n  \"a\": 1,\n}"))
	var ce *ConditionError
	if c != nil || !errors.As(err, &ce) || ce.Line != 3 || ce.Column != 1 || !strings.Contains(ce.Msg, "invalid JSON") {
		t.Errorf("CompileCondition(invalid) = %v, %v", c, err)
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("CompileCondition(invalid): %v does not wrap a *json.SyntaxError", err)
	}
	for _, cond := range []string{``, `{`, `{"a":}`, `{} {}`, `{"a": tru}`} {
		if _, err := EvalCondition([]byte(cond), []byte(`{}`)); err == nil {
			t.Errorf("EvalCondition(%q) succeeded", cond)
		}
	}
	if ok, err := EvalCondition([]byte(`{}`), []byte(`{"a":`)); ok || !errors.Is(err, ErrInvalidDocument) {
		t.Errorf("EvalCondition(invalid document) = %v, %v", ok, err)
	}
	if ok, err := EvalCondition([]byte(`{}`), nil); ok || !errors.Is(err, ErrInvalidDocument) {
		t.Errorf("EvalCondition(empty document) = %v, %v", ok, err)
	}

	// Too deep.
	deep := strings.Repeat(`{"$not":`, MaxConditionDepth) + `{}` + strings.Repeat(`}`, MaxConditionDepth)
	if c, err := CompileCondition([]byte(deep)); c != nil || !errors.Is(err, ErrConditionTooDeep) {
		t.Errorf("CompileCondition(depth %d) = %v, %v", MaxConditionDepth+1, c, err)
	}
	if ok, err := EvalCondition([]byte(deep), []byte(`{}`)); ok || !errors.Is(err, ErrConditionTooDeep) {
		t.Errorf("EvalCondition(depth %d) = %v, %v", MaxConditionDepth+1, ok, err)
	}
	deep = strings.Repeat(`{"$not":`, MaxConditionDepth-1) + `{}` + strings.Repeat(`}`, MaxConditionDepth-1)
	if ok, err := EvalCondition([]byte(deep), []byte(`{}`)); ok == (MaxConditionDepth%2 == 0) || err != nil {
		t.Errorf("EvalCondition(depth %d) = %v, %v", MaxConditionDepth, ok, err)
	}
	if _, err := CompileCondition([]byte(`[` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100001))); !errors.Is(err, ErrConditionTooDeep) && err == nil {
		t.Errorf("CompileCondition(depth 100001): %v", err)
	}

	// Problems wrap their cause.
	_, err = CompileCondition([]byte(`{"a": {"$regex": "("}}`))
	var re *syntax.Error
	if !errors.As(err, &re) {
		t.Errorf("invalid regex: %v does not wrap a *syntax.Error", err)
	}

	// A nil Condition matches nothing.
	var nilc *Condition
	if nilc.Match([]byte(`{}`)) || nilc.MatchAt([]byte(`{}`), condTestNow) {
		t.Errorf("nil Condition matched")
	}
}

func TestConditionWithSource(t *testing.T) {
	t.Parallel()
	_, err := CompileCondition([]byte("{\"a\": {\"$foo\": 1},\n \"b\": {\"$bar\": 2}}"), WithSource("segments.json", 10, 15))
	var list ConditionErrors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("CompileCondition: %v", err)
	}
	want := []ConditionError{
		{File: "segments.json", Line: 10, Column: 22, Path: "/a/$foo", Msg: "unknown operator $foo"},
		{File: "segments.json", Line: 11, Column: 8, Path: "/b/$bar", Msg: "unknown operator $bar"},
	}
	for i, e := range list {
		if !reflect.DeepEqual(*e, want[i]) {
			t.Errorf("problem %d = %+v, want %+v", i, *e, want[i])
		}
	}
	if got, want := list[0].Error(), "segments.json:10:22: /a/$foo: unknown operator $foo"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := err.Error(); !strings.HasPrefix(got, "2 problems:\n\tsegments.json:10:22: ") {
		t.Errorf("ConditionErrors.Error() = %q", got)
	}
}

func TestPaddedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1.2.3", "    1-    2-    3-~"},
		{"v1.2.3", "    1-    2-    3-~"},
		{"1.2.3-beta.11", "    1-    2-    3-beta-   11"},
		{"1.2.3+build.7", "    1-    2-    3-~"},
		{"1-2-3", "    1-    2-    3-~"},
		{"1.2", "    1-    2"},
		{"", "    0"},
		{"v", ""},
		{"+x", ""},
		{"12345.0.0", "12345-    0-    0-~"},
		{"0001.2.3", " 0001-    2-    3-~"},
		{"a+b\nc+d", "a+b\nc"},
		{"1..2", "    1--    2-~"},
		{"vv1", "v1"},
	}
	for _, tc := range tests {
		if got := string(appendPaddedVersion(nil, tc.in)); got != tc.want {
			t.Errorf("appendPaddedVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCondDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"72h", 72 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"2h30m", 150 * time.Minute},
		{"90d", 2160 * time.Hour},
		{"500ms", 500 * time.Millisecond},
		{"1d1d", 48 * time.Hour},
		{"0.5h1d", 24*time.Hour + 30*time.Minute},
	}
	for _, tc := range tests {
		if got, err := parseCondDuration(tc.in); err != nil || got != tc.want {
			t.Errorf("parseCondDuration(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "7", "d", "-1h", "0s", "0d", "7days", "1w", "1e3d", "h", "1.d.", "99999999999d", "+1h", "1h-1m", " 1h"} {
		if d, err := parseCondDuration(in); err == nil {
			t.Errorf("parseCondDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestParseCondTime(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"2026-03-01T12:00:00Z",
		"2026-03-01T12:00:00.5Z",
		"2026-03-01T12:00:00.123456789Z",
		"2026-03-01T12:00:00.1234567891Z",
		"2026-03-01T12:00:00+05:30",
		"2026-03-01T12:00:00.25-08:00",
		"2024-02-29T23:59:59Z",
		"0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z",
		"2026-03-01t12:00:00z",
	} {
		got, ok := parseCondTime(s)
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		if !ok || err != nil || !got.Equal(want) {
			t.Errorf("parseCondTime(%q) = %v, %v, want %v, %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{
		"", "2026-03-01", "2026-03-01T12:00:00", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z", "2026-03-01T12:00:60Z", "2026-03-01T12:00:00.Z",
		"2026-03-01T12:00:00+0530", "2026-03-01T12:00:00+24:00", "2026-03-01 12:00:00Z", "2026-0a-01T12:00:00Z",
		"-026-03-01T12:00:00Z", "2026-03-01T12:00:00ZZ",
	} {
		if got, ok := parseCondTime(s); ok {
			t.Errorf("parseCondTime(%q) = %v, want not ok", s, got)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"a", "b", -1},
		{"b", "a", 1},
		{"a", "a", 0},
		{"", "a", -1},
		{"ab", "a", 1},
		{"é", "z", 1},
		{"😀", "\uffff", -1}, // U+D83D < U+FFFF in UTF-16
		{"\ue000", "😀", 1},
		{"😀", "😁", -1},
		{"x\xff", "x\xfe", 1},
	}
	for _, tc := range tests {
		if got := compareUTF16(tc.a, tc.b); got != tc.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// condTestProfile returns a realistic profile document: 20 traits and
// events (240 fill the ring of 200 recent events), the newest at now.
func condTestProfile(tb testing.TB, now time.Time, events int) []byte {
	tb.Helper()
	p := store.New("v-1")
	traits := map[string]any{"plan": "pro", "email": "ann@example.com", "stage": "customer", "company": "Acme", "seats": 12, "country": "FR"}
	for i := len(traits); i < 20; i++ {
		traits[fmt.Sprintf("trait%02d", i)] = fmt.Sprintf("value %d", i)
	}
	tr, err := json.Marshal(traits)
	if err != nil {
		tb.Fatal(err)
	}
	evs := []store.Event{{ID: "app:1", Type: store.TypeIdentify, UserID: "u-1", Traits: tr, Time: now.Add(-300 * 24 * time.Hour)}}
	for i := range events {
		e := store.Event{
			ID:       store.EventID("app", uint64(i+2)),
			Type:     store.TypePage,
			Time:     now.Add(-time.Duration(events-i) * 6 * time.Hour),
			Path:     fmt.Sprintf("/products/%d", i%17),
			Category: []string{"shoes", "hats", "bags"}[i%3],
			Item:     fmt.Sprintf("sku-%d", i%17),
			Device:   "mobile",
			NewVisit: i%5 == 0,
		}
		switch i % 10 {
		case 3:
			e.Type, e.Name = store.TypeTrack, "add_to_cart"
		case 7:
			e.Type, e.Name = store.TypeTrack, store.EventPurchase
			e.Items = []store.Item{{ID: e.Item, Category: e.Category, Price: 49.5, Quantity: 2}}
		}
		evs = append(evs, e)
	}
	p.Apply(store.Limits{}, evs...)
	doc, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// condTestTypical are typical conditions over a profile: none of them may
// allocate when it is evaluated.
var condTestTypical = []string{
	`{"traits.plan": {"$in": ["pro", "business"]}, "visits": {"$gte": 3}, "purchases.count": {"$gte": 1}, "recent": {"$count": {"where": {"name": "add_to_cart"}, "within": "7d", "is": {"$gte": 1}}}}`,
	`{"traits.plan": "pro"}`,
	`{"traits.email": {"$regex": "@example\\.com$"}}`,
	`{"traits.country": {"$ini": ["fr", "be", "ch"]}}`,
	`{"$or": [{"counts.purchase": {"$gte": 5}}, {"purchases.revenue": {"$gt": 1000}}]}`,
	`{"pages./products/3": {"$gte": 2}}`,
	`{"lastSeen": {"$within": "1d"}, "firstSeen": {"$olderThan": "30d"}}`,
	`{"recent": {"$elemMatch": {"name": "purchase", "items.0.price": {"$gt": 20}}}}`,
	`{"recent.length": {"$gte": 100}, "traits.unknown": {"$exists": false}}`,
	`{"$not": {"traits.stage": {"$nin": ["customer", "lead"]}}}`,
	`{"userId": {"$inGroup": "vip"}}`,
	`{"traits.seats": {"$vgte": 10}}`,
	`{"purchases.months": {"$all": [0]}, "purchases.categories": {"shoes": 16, "hats": 16, "bags": 16}}`,
	`{"recent": {"$count": {"where": {"$or": [{"name": "purchase"}, {"category": "hats"}]}, "within": "90d", "is": {"$gt": 10, "$lt": 500}}}}`,
}

func TestConditionNoAllocations(t *testing.T) {
	if testing.Short() || condRace {
		t.Skip("counts allocations")
	}
	now := time.Now()
	doc := condTestProfile(t, now, 240)
	groups := WithSavedGroups(map[string][]any{"vip": {"u-1", "u-2"}})
	for _, cond := range condTestTypical {
		c, err := CompileCondition([]byte(cond), groups)
		if err != nil {
			t.Fatalf("CompileCondition(%s): %v", cond, err)
		}
		if !c.MatchAt(doc, now) {
			t.Errorf("%s does not match the test profile", cond)
		}
		if n := testing.AllocsPerRun(50, func() { c.MatchAt(doc, now) }); n != 0 {
			t.Errorf("%s: %v allocations per MatchAt, want 0", cond, n)
		}
	}
}

func TestConditionConcurrent(t *testing.T) {
	t.Parallel()
	now := time.Now()
	doc := condTestProfile(t, now, 240)
	c, err := CompileCondition([]byte(condTestTypical[0]))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if !c.MatchAt(doc, now) {
					t.Error("no match")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkEvalCondition(b *testing.B) {
	now := time.Now()
	doc := condTestProfile(b, now, 240)
	b.Run("4-clauses", func(b *testing.B) {
		c, err := CompileCondition([]byte(condTestTypical[0]))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if !c.MatchAt(doc, now) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("1-clause", func(b *testing.B) {
		c, err := CompileCondition([]byte(condTestTypical[1]))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !c.MatchAt(doc, now) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("uncompiled", func(b *testing.B) {
		cond := []byte(condTestTypical[0])
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := EvalCondition(cond, doc); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// TestStrictTypes: by default $gt, $gte, $lt and $lte compare as
// JavaScript's relational operators do; StrictTypes orders only two numbers
// or two strings; NumericStrings undoes StrictTypes.
func TestStrictTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cond, doc  string
		js, strict bool
	}{
		{`{"n":{"$gt":5}}`, `{"n":"8"}`, true, false},
		{`{"n":{"$gt":5,"$lt":10}}`, `{"n":" 8 "}`, true, false},   // white space around the number
		{`{"n":{"$lte":"10"}}`, `{"n":9.5}`, true, false},          // a numeric argument string
		{`{"n":{"$gt":15}}`, `{"n":"0x10"}`, true, false},          // hexadecimal
		{`{"n":{"$lt":1}}`, `{"n":""}`, true, false},               // "" is 0
		{`{"n":{"$gt":1e308}}`, `{"n":"Infinity"}`, true, false},   // Infinity
		{`{"n":{"$gt":1}}`, `{"n":"1_000"}`, false, false},         // no separators
		{`{"n":{"$gt":1}}`, `{"n":"inf"}`, false, false},           // Go's spellings are not numbers
		{`{"n":{"$gte":0}}`, `{"n":"1e-400"}`, true, false},        // underflow is 0
		{`{"n":{"$gt":5}}`, `{"n":"eight"}`, false, false},         // NaN is ordered with nothing
		{`{"n":{"$lte":5}}`, `{"n":"eight"}`, false, false},        // not even by $lte
		{`{"n":{"$gt":"9"}}`, `{"n":"10"}`, false, false},          // two strings: by UTF-16 order
		{`{"n":{"$gte":0,"$lte":0}}`, `{}`, true, false},           // missing is null is 0
		{`{"n":{"$gt":-1}}`, `{"n":null}`, true, false},            // null is 0
		{`{"n":{"$gt":"a"}}`, `{}`, false, false},                  // null against a string: NaN
		{`{"n":{"$gte":1}}`, `{"n":true}`, true, false},            // true is 1
		{`{"n":{"$lt":true}}`, `{"n":false}`, true, false},         // false < true
		{`{"n":{"$gt":4}}`, `{"n":[5]}`, true, false},              // [5] is "5"
		{`{"n":{"$lt":"b"}}`, `{"n":["a","z"]}`, true, false},      // ["a","z"] is "a,z"
		{`{"n":{"$gt":1}}`, `{"n":[1,2]}`, false, false},           // "1,2" is NaN
		{`{"n":{"$lt":"[p"}}`, `{"n":{"a":1}}`, true, false},       // "[object Object]"
		{`{"n":{"$gte":[1e21]}}`, `{"n":"1e+21"}`, true, false},    // [1e21] is "1e+21"
		{`{"n":{"$lt":[0.0000001]}}`, `{"n":"1e-6"}`, true, false}, // [1e-7] is "1e-7": two strings
		{`{"n":{"$eq":5}}`, `{"n":"5"}`, false, false},             // $eq is strict either way
		{`{"n":{"$gt":5}}`, `{"n":8}`, true, true},
		{`{"n":{"$gt":"a"}}`, `{"n":"b"}`, true, true},
	} {
		js, err := EvalCondition([]byte(tc.cond), []byte(tc.doc))
		if err != nil || js != tc.js {
			t.Errorf("%s on %s: %v, %v; want %v", tc.cond, tc.doc, js, err, tc.js)
		}
		strict, err := EvalCondition([]byte(tc.cond), []byte(tc.doc), StrictTypes())
		if err != nil || strict != tc.strict {
			t.Errorf("StrictTypes: %s on %s: %v, %v; want %v", tc.cond, tc.doc, strict, err, tc.strict)
		}
		undone, err := EvalCondition([]byte(tc.cond), []byte(tc.doc), StrictTypes(), NumericStrings())
		if err != nil || undone != tc.js {
			t.Errorf("StrictTypes, NumericStrings: %s on %s: %v, %v; want %v", tc.cond, tc.doc, undone, err, tc.js)
		}
	}
}

// TestJSNumberString: numbers become strings as JavaScript's
// Number.prototype.toString makes them, when an array is compared.
func TestJSNumberString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {-0.0, "0"}, {1, "1"}, {-1.5, "-1.5"}, {0.1, "0.1"},
		{123456789012345680000, "123456789012345680000"}, {1e21, "1e+21"},
		{1.5e21, "1.5e+21"}, {0.000001, "0.000001"}, {0.0000001, "1e-7"},
		{1.25e-7, "1.25e-7"}, {5e-324, "5e-324"}, {math.Inf(1), "Infinity"},
	} {
		if got := jsNumberString(tc.in); got != tc.want {
			t.Errorf("jsNumberString(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
