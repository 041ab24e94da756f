//! The function library, one table: every function through the evaluator, with its errors.
use ballast_lang::config::{Config, Expr};
use ballast_lang::eval::Scope;
use ballast_lang::funcs;
use ballast_sdk::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Every function, one table: the expression, and its result (HCL rendering) or error.
/// Sources of the expected values, cited per group or row:
///   [doc:NAME]  developer.hashicorp.com/terraform/language/functions/NAME (the examples)
///   [cty:FILE]  zclconf/go-cty cty/function/stdlib/FILE (its tests or its code)
///   [tf:FILE]   hashicorp/terraform internal/lang/funcs/FILE (its tests or its code)
///   [yaml]      zclconf/go-cty-yaml encode_test.go
const CASES: &[(&str, &str)] = &[
    // ---- format [doc:format], [cty:format_test.go]
    ("format(\"Hello, %s!\", \"Ander\")", "\"Hello, Ander!\""),
    ("format(\"There are %d lights\", 4)", "\"There are 4 lights\""),
    ("format(\"%s-%03d\", \"a\", 7)", "\"a-007\""),
    ("format(\"[%-4s][%4s][%.2f][%+d]\", \"ab\", \"cd\", 3.14159, 5)", "\"[ab  ][  cd][3.14][+5]\""),
    ("format(\"%q %v %%\", \"x\", [1])", "\"\\\"x\\\" [1] %\""),
    ("format(\"%%%v\", false)", "\"%false\""),
    ("format(\"string %[2]v\", true, \"hello\")", "\"string hello\""),
    ("format(\"%#v\", \"hello\")", "\"\\\"hello\\\"\""),
    ("format(\"%v\", {})", "\"{}\""),
    ("format(\"%v\", null)", "\"null\""),
    ("format(\"%v\", 1234567)", "\"1.234567e+06\""),
    ("format(\"%10s|\", \"hello\")", "\"     hello|\""),
    ("format(\"%-10s|\", \"hello\")", "\"hello     |\""),
    ("format(\"%4s|\", \"💃🏿\")", "\"   💃🏿|\""),
    ("format(\"%.2s\", \"hello\")", "\"he\""),
    ("format(\"%.5s\", \"日本語日本語\")", "\"日本語日本\""),
    ("format(\"%4.2s|\", \"hello\")", "\"  he|\""),
    ("format(\"%-4.2s|\", \"hello\")", "\"he  |\""),
    ("format(\"%6.2q\", \"hello\")", "\"  \\\"he\\\"\""),
    ("format(\"%q\", \"Hello\\nWorld\")", "\"\\\"Hello\\\\nWorld\\\"\""),
    ("format(\"%t\", \"false\")", "\"false\""),
    ("format(\"%[2]t\", 1, true)", "\"true\""),
    ("format(\"%d|%+d|% d|%5d|%-5d|\", 10, 10, 10, 10, 10)", "\"10|+10| 10|   10|10   |\""),
    ("format(\"%b %o %x %X\", 5, 9, 254, 254)", "\"101 11 fe FE\""),
    ("format(\"%#x %#o %08.3d\", 255, 8, 7)", "\"0xff 010      007\""),
    ("format(\"%f|%+f|% f\", 10, 10, -10)", "\"10.000000|+10.000000|-10.000000\""),
    ("format(\"%.1f\", \"1.06\")", "\"1.1\""),
    ("format(\"%e %E\", 1000, 1000)", "\"1.000000e+03 1.000000E+03\""),
    ("format(\"%g %G\", 1000, 1000)", "\"1000 1000\""),
    ("format(\"%g %G\", \"0.00000000000000000000001\", \"0.00000000000000000000001\")", "\"1e-23 1E-23\""),
    ("format(\"%08.3f|%-8.2e|\", -3.14159, 1234.5)", "\"-003.142|1.23e+03|\""),
    ("format(\"%s\")", "error: format(): not enough arguments for \"%s\" at 0: need index 1 but have 0 total"),
    ("format(\"%[3]s\", true, true)", "error: format(): not enough arguments for \"%[3]s\" at 0: need index 3 but have 2 total"),
    ("format(\"%[0]s\", true, true)", "error: format(): unrecognized format character '0' at offset 2"),
    ("format(\"%z is not valid\", 10)", "error: format(): unsupported format verb 'z' in \"%z\" at offset 0"),
    ("format(\"%012z\", 10)", "error: format(): unsupported format verb 'z' in \"%012z\" at offset 0"),
    ("format(\"%d\", 1.5)", "error: format(): unsupported value for \"%d\" at 0: an integer is required"),
    ("format(\"%s\", null)", "error: format(): unsupported value for \"%s\" at 0: null value cannot be formatted"),
    // no memory exhaustion on absurd widths (a ballast limit)
    ("format(\"%999999999s\", \"x\")", "error: format(): the width or precision of \"%999999999s\" at 0 is larger than 1000000"),
    ("format(\"hello\", 1)", "error: format(): too many arguments; no verbs in format string"),
    ("format(\"%s\", 1, 2)", "error: format(): too many arguments; only 1 used by format string"),
    // ---- formatlist [doc:formatlist], [cty:format.go]
    ("formatlist(\"Hello, %s!\", [\"Valentina\", \"Ander\", \"Olivia\", \"Sam\"])", "[\"Hello, Valentina!\", \"Hello, Ander!\", \"Hello, Olivia!\", \"Hello, Sam!\"]"),
    ("formatlist(\"%s, %s!\", \"Salutations\", [\"Valentina\", \"Ander\"])", "[\"Salutations, Valentina!\", \"Salutations, Ander!\"]"),
    ("formatlist(\"%s=%s\", [\"a\", \"b\"], [1, 2])", "[\"a=1\", \"b=2\"]"),
    ("formatlist(\"%s=%x\", [\"a\"], [255])", "[\"a=ff\"]"),
    ("formatlist(\"%s\", [1], [1, 2])", "error: formatlist(): argument 3 has length 2, which is inconsistent with argument 2 of length 1"),
    ("formatlist(\"%d\", [\"x\"])", "error: formatlist(): error on format iteration 0: unsupported value for \"%d\" at 0: a number is required"),
    // ---- strings [doc:NAME]
    ("chomp(\"hello\\n\")", "\"hello\""),
    ("chomp(\"hello\\r\\n\")", "\"hello\""),
    ("chomp(\"hello\\n\\n\")", "\"hello\""),
    ("indent(2, \"[\\n  foo,\\n  bar,\\n]\\n\")", "\"[\\n    foo,\\n    bar,\\n  ]\\n  \""),
    ("join(\", \", [\"foo\", \"bar\", \"baz\"])", "\"foo, bar, baz\""),
    ("join(\",\", [\"a\"], [\"b\", \"c\"])", "\"a,b,c\""),
    ("join(\",\", [\"a\", null])", "error: join(): element 1 is null; cannot concatenate null values"),
    ("split(\",\", \"foo,bar,baz\")", "[\"foo\", \"bar\", \"baz\"]"),
    ("split(\",\", \"foo\")", "[\"foo\"]"),
    ("split(\",\", \"\")", "[\"\"]"),
    ("lower(\"HELLO\")", "\"hello\""),
    ("upper(\"алло!\")", "\"АЛЛО!\""),
    ("title(\"hello world\")", "\"Hello World\""),
    ("title(\"hello-world foo_bar\")", "\"Hello-World Foo_bar\""),
    ("trim(\"?!hello?!\", \"!?\")", "\"hello\""),
    ("trim(\"foobar\", \"far\")", "\"oob\""),
    ("trim(\"   hello! world.!  \", \"! \")", "\"hello! world.\""),
    ("trimprefix(\"helloworld\", \"hello\")", "\"world\""),
    ("trimsuffix(\"helloworld\", \"world\")", "\"hello\""),
    ("trimspace(\"  hello\\n\\n\")", "\"hello\""),
    ("strrev(\"hello\")", "\"olleh\""),
    ("strrev(\"a ☃\")", "\"☃ a\""),
    ("strcontains(\"hello world\", \"wor\")", "true"),
    ("strcontains(\"hello world\", \"wod\")", "false"),
    ("startswith(\"hello world\", \"hello\")", "true"),
    ("endswith(\"hello world\", \"hello\")", "false"),
    ("substr(\"hello world\", 1, 4)", "\"ello\""),
    ("substr(\"🤔🤷\", 0, 1)", "\"🤔\""),
    ("substr(\"hello world\", -5, -1)", "\"world\""),
    ("substr(\"hello world\", 7, 100)", "\"orld\""),
    // [cty:string.go] an offset past the end gives the empty string
    ("substr(\"hi\", 5, 1)", "\"\""),
    ("substr(\"hi\", 0.5, 1)", "error: substr(): argument 2: a whole number is required, not 0.5"),
    // ---- replace and regular expressions [doc:replace], [doc:regex], [doc:regexall], [cty:regexp.go]
    ("replace(\"1 + 2 + 3\", \"+\", \"-\")", "\"1 - 2 - 3\""),
    ("replace(\"hello world\", \"/w.*d/\", \"everybody\")", "\"hello everybody\""),
    ("replace(\"hello world\", \"/(\\\\w+) (\\\\w+)/\", \"$2 $1\")", "\"world hello\""),
    ("replace(\"a-b\", \"/(?P<x>\\\\w)-/\", \"$${x}+\")", "\"a+b\""),
    ("replace(\"/\", \"/\", \"x\")", "\"x\""),
    ("replace(\"x\", \"/(/\", \"y\")", "error: replace(): error parsing regexp: unclosed group"),
    ("regex(\"[a-z]+\", \"53453453.345345aaabbbccc23454\")", "\"aaabbbccc\""),
    ("regex(\"(\\\\d\\\\d\\\\d\\\\d)-(\\\\d\\\\d)-(\\\\d\\\\d)\", \"2019-02-01\")", "[\"2019\", \"02\", \"01\"]"),
    ("regex(\"^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?\", \"https://terraform.io/docs/\")", "{ authority = \"terraform.io\", scheme = \"https\" }"),
    ("regex(\"[a-z]+\", \"53453453.34534523454\")", "error: regex(): pattern did not match any part of the given string"),
    ("regex(\"(\", \"abc\")", "error: regex(): argument 1: error parsing pattern: unclosed group"),
    ("regex(\"(?P<a>x)(y)\", \"xy\")", "error: regex(): invalid regexp pattern: cannot mix both named and unnamed capture groups"),
    ("regexall(\"[a-z]+\", \"1234abcd5678efgh9\")", "[\"abcd\", \"efgh\"]"),
    ("length(regexall(\"[a-z]+\", \"123456789\"))", "0"),
    // ---- templatestring [doc:templatestring]
    ("templatestring(\"Hello, $${name}!\", {name = \"Ander\"})", "\"Hello, Ander!\""),
    ("templatestring(\"%%{ for n in names }$${n};%%{ endfor }\", {names = [\"a\", \"b\"]})", "\"a;b;\""),
    ("templatestring(\"x\", \"y\")", "error: templatestring(): invalid vars value: must be a map"),
    // ---- collections [doc:NAME]
    ("alltrue([\"true\", true])", "true"),
    ("alltrue([true, false])", "false"),
    ("alltrue([])", "true"),
    ("anytrue([\"true\"])", "true"),
    ("anytrue([])", "false"),
    ("chunklist([\"a\", \"b\", \"c\", \"d\", \"e\"], 2)", "[[\"a\", \"b\"], [\"c\", \"d\"], [\"e\"]]"),
    ("chunklist([\"a\", \"b\", \"c\", \"d\", \"e\"], 1)", "[[\"a\"], [\"b\"], [\"c\"], [\"d\"], [\"e\"]]"),
    ("chunklist([\"a\"], -1)", "error: chunklist(): the size argument must be positive"),
    ("coalesce(\"a\", \"b\")", "\"a\""),
    ("coalesce(\"\", \"b\")", "\"b\""),
    ("coalesce(1, 2)", "1"),
    ("coalesce(1, \"hello\")", "\"1\""),
    ("coalesce(null, \"\", \"x\")", "\"x\""),
    ("coalesce(null)", "error: coalesce(): no non-null, non-empty-string arguments"),
    ("coalescelist([\"a\", \"b\"], [\"c\", \"d\"])", "[\"a\", \"b\"]"),
    ("coalescelist([], [\"c\", \"d\"])", "[\"c\", \"d\"]"),
    ("coalescelist([], [])", "error: coalescelist(): no non-null arguments"),
    ("compact([\"a\", \"\", \"b\", null, \"c\"])", "[\"a\", \"b\", \"c\"]"),
    ("concat([\"a\", \"\"], [\"b\", \"c\"])", "[\"a\", \"\", \"b\", \"c\"]"),
    ("concat([1], 2)", "error: concat(): argument 2: all arguments must be lists or tuples; got number"),
    ("contains([\"a\", \"b\", \"c\"], \"a\")", "true"),
    ("contains([\"a\", \"b\", \"c\"], \"d\")", "false"),
    ("contains([\"1\", \"2\"], 1)", "true"),
    ("distinct([\"a\", \"b\", \"a\", \"c\", \"d\", \"b\"])", "[\"a\", \"b\", \"c\", \"d\"]"),
    ("element([\"a\", \"b\", \"c\"], 1)", "\"b\""),
    ("element([\"a\", \"b\", \"c\"], 3)", "\"a\""),
    // [cty:collection.go] a negative index counts from the end
    ("element([\"a\", \"b\", \"c\"], -1)", "\"c\""),
    ("element([], 0)", "error: element(): cannot use element function with an empty list"),
    ("flatten([[\"a\", \"b\"], [], [\"c\"]])", "[\"a\", \"b\", \"c\"]"),
    ("flatten([[[\"a\", \"b\"], []], [\"c\"]])", "[\"a\", \"b\", \"c\"]"),
    ("index([\"a\", \"b\", \"c\"], \"b\")", "1"),
    ("index([\"a\"], \"z\")", "error: index(): item not found"),
    ("keys({a = 1, c = 2, d = 3})", "[\"a\", \"c\", \"d\"]"),
    ("length([])", "0"),
    ("length([\"a\", \"b\"])", "2"),
    ("length({\"a\" = \"b\"})", "1"),
    ("length(\"hello\")", "5"),
    ("length(\"héllo\")", "5"),
    ("length(\"👾🕹️\")", "2"),
    ("length(1)", "error: length(): argument must be a string, a collection type, or a structural type"),
    ("list(1)", "error: list(): the \"list\" function was deprecated in Terraform v0.12 and is no longer available; use tolist([ ... ]) syntax to write a literal list"),
    ("map(\"a\", 1)", "error: map(): the \"map\" function was deprecated in Terraform v0.12 and is no longer available; use tomap({ ... }) syntax to write a literal map"),
    ("lookup({a = \"ay\", b = \"bee\"}, \"a\", \"what?\")", "\"ay\""),
    ("lookup({a = \"ay\", b = \"bee\"}, \"c\", \"what?\")", "\"what?\""),
    ("lookup({a = 1}, \"b\")", "error: lookup(): the given object has no attribute \"b\""),
    ("matchkeys([\"i-123\", \"i-abc\", \"i-def\"], [\"us-west\", \"us-east\", \"us-east\"], [\"us-east\"])", "[\"i-abc\", \"i-def\"]"),
    ("merge({a = \"b\", c = \"d\"}, {e = \"f\", c = \"z\"})", "{ a = \"b\", c = \"z\", e = \"f\" }"),
    ("one([])", "null"),
    ("one([\"hello\"])", "\"hello\""),
    ("one([\"hello\", \"goodbye\"])", "error: one(): must be a list, set, or tuple value with either zero or one elements"),
    ("range(3)", "[0, 1, 2]"),
    ("range(1, 4)", "[1, 2, 3]"),
    ("range(1, 8, 2)", "[1, 3, 5, 7]"),
    ("range(1, 4, 0.5)", "[1, 1.5, 2, 2.5, 3, 3.5]"),
    ("range(4, 1)", "[4, 3, 2]"),
    ("range(10, 5, -2)", "[10, 8, 6]"),
    // [cty:sequence.go]
    ("range(0, 1, 0)", "error: range(): argument 3: step must not be zero"),
    ("range(1, 5, -1)", "error: range(): argument 2: end must be less than start when step is negative"),
    ("range(2000)", "error: range(): more than 1024 values were generated; either decrease the difference between start and end or use a smaller step"),
    ("reverse([1, 2, 3])", "[3, 2, 1]"),
    ("slice([\"a\", \"b\", \"c\", \"d\"], 1, 3)", "[\"b\", \"c\"]"),
    ("slice([\"a\"], 0, 2)", "error: slice(): argument 3: end index must not be greater than the length of the list"),
    ("sort([\"e\", \"d\", \"a\", \"x\"])", "[\"a\", \"d\", \"e\", \"x\"]"),
    // [cty:string.go] sort is lexical over strings: numbers are converted
    ("sort([3, 10, 1])", "[\"1\", \"10\", \"3\"]"),
    ("sum([10, 13, 6, 4.5])", "33.5"),
    ("sum([])", "error: sum(): cannot sum an empty list"),
    ("transpose({\"a\" = [\"1\", \"2\"], \"b\" = [\"2\", \"3\"]})", "{ \"1\" = [\"a\"], \"2\" = [\"a\", \"b\"], \"3\" = [\"b\"] }"),
    ("values({a = 3, c = 2, d = 1})", "[3, 2, 1]"),
    ("zipmap([\"a\", \"b\"], [1, 2])", "{ a = 1, b = 2 }"),
    ("zipmap([\"a\"], [1, 2])", "error: zipmap(): number of keys (1) does not match number of values (2)"),
    // ---- sets: strings in lexical order, numbers in numeric order [cty:set_internals.go],
    // [doc:toset] (toset(["a", "b", 3]) is toset(["3", "a", "b"]))
    ("toset([\"b\", \"a\", \"b\"])", "[\"a\", \"b\"]"),
    ("toset([\"a\", \"b\", 3])", "[\"3\", \"a\", \"b\"]"),
    ("toset([10, 9, 100])", "[9, 10, 100]"),
    ("[for s in toset([\"c\", \"a\", \"b\"]) : upper(s)]", "[\"A\", \"B\", \"C\"]"),
    ("setintersection([\"a\", \"b\"], [\"b\", \"c\"], [\"b\", \"d\"])", "[\"b\"]"),
    ("setproduct([\"development\", \"staging\"], [\"app1\", \"app2\"])", "[[\"development\", \"app1\"], [\"development\", \"app2\"], [\"staging\", \"app1\"], [\"staging\", \"app2\"]]"),
    ("setproduct([\"a\"])", "error: setproduct(): at least two arguments are required"),
    ("setsubtract([\"a\", \"b\", \"c\"], [\"a\", \"c\"])", "[\"b\"]"),
    ("setunion([\"a\", \"b\"], [\"b\", \"c\"], [\"d\"])", "[\"a\", \"b\", \"c\", \"d\"]"),
    ("setunion([10, 2], [1])", "[1, 2, 10]"),
    // ---- numbers [doc:NAME]
    ("abs(23)", "23"),
    ("abs(-12.4)", "12.4"),
    ("ceil(5.1)", "6"),
    ("floor(4.9)", "4"),
    ("log(50, 10)", "1.6989700043360185"),
    ("log(16, 2)", "4"),
    ("log(1, 10)", "0"),
    ("max(12, 54, 3)", "54"),
    ("max([12, 54, 3]...)", "54"),
    ("min(12, 54, 3)", "3"),
    ("parseint(\"100\", 10)", "100"),
    ("parseint(\"FF\", 16)", "255"),
    ("parseint(\"-10\", 16)", "-16"),
    ("parseint(\"1011111011101111\", 2)", "48879"),
    ("parseint(\"aA\", 62)", "656"),
    ("parseint(\"12\", 2)", "error: parseint(): cannot parse \"12\" as a base 2 integer"),
    ("pow(3, 2)", "9"),
    ("pow(4, 0)", "1"),
    ("signum(-13)", "-1"),
    ("signum(0)", "0"),
    ("signum(344)", "1"),
    // ---- arbitrary-precision numbers: cty keeps a 512-bit big.Float [cty:value_init.go
    //      ParseNumberVal], prints it with Text('f', -1) [cty:json/marshal.go], `%` keeps the
    //      dividend's sign [cty:value_ops.go Modulo], integer exponents are exact [doc:pow]
    ("tostring(0.1 + 0.2)", "\"0.3\""),
    ("jsonencode(9007199254740993)", "\"9007199254740993\""),
    ("jsonencode({n = 0.1 + 0.2, m = 9007199254740993})", "\"{\\\"m\\\":9007199254740993,\\\"n\\\":0.3}\""),
    ("tostring(9007199254740993)", "\"9007199254740993\""),
    ("tonumber(\"9007199254740993\")", "9007199254740993"),
    ("jsondecode(\"9007199254740993\")", "9007199254740993"),
    ("tostring(1e20)", "\"100000000000000000000\""),
    ("pow(2, 64)", "18446744073709551616"),
    ("pow(2, -2)", "0.25"),
    ("pow(10, 30) + 1", "1000000000000000000000000000001"),
    ("pow(4, 0.5)", "2"),
    ("floor(100000000000000000000.5)", "100000000000000000000"),
    ("ceil(9007199254740992.5)", "9007199254740993"),
    ("floor(-9007199254740992.5)", "-9007199254740993"),
    ("abs(-9007199254740993)", "9007199254740993"),
    ("signum(-0.000000000000000000000000000001)", "-1"),
    ("parseint(\"9007199254740993\", 10)", "9007199254740993"),
    ("parseint(\"FFFFFFFFFFFFFFFFFF\", 16)", "4722366482869645213695"),
    ("parseint(\"-18446744073709551617\", 10)", "-18446744073709551617"),
    ("max(9007199254740992, 9007199254740993)", "9007199254740993"),
    ("min(9007199254740993, 9007199254740992)", "9007199254740992"),
    ("sum([0.1, 0.2, 0.3])", "0.6"),
    ("sum([9007199254740993, 1])", "9007199254740994"),
    ("format(\"%d\", 9007199254740993)", "\"9007199254740993\""),
    ("format(\"%d\", pow(2, 64))", "\"18446744073709551616\""),
    ("format(\"%x\", pow(2, 64))", "\"10000000000000000\""),
    ("format(\"%f\", 0.1 + 0.2)", "\"0.300000\""),
    ("format(\"%.20f\", 0.1)", "\"0.10000000000000000000\""),
    ("format(\"%f\", 9007199254740993)", "\"9007199254740993.000000\""),
    ("format(\"%e\", 9007199254740993)", "\"9.007199e+15\""),
    ("format(\"%g\", 0.1 + 0.2)", "\"0.3\""),
    ("format(\"%v\", 1 / 3)", "\"0.3333333333333333\""),
    // ballast bounds the exponent (|exponent| <= 10000) instead of hanging or allocating
    ("tonumber(\"1e1000000\")", "error: tonumber(): cannot convert \"1e1000000\" to number; given string must be a decimal representation of a number"),
    ("pow(10, 1000000)", "error: pow(): number is too large (more than 10000 decimal digits)"),
    ("pow(10, 9223372036854775807)", "error: pow(): number is too large (more than 10000 decimal digits)"),
    ("pow(0.1, 1000000)", "0"),
    ("jsondecode(\"1e1000000\")", "error: jsondecode(): invalid JSON: number out of range at line 1 column 9"),
    // ---- encoding [doc:NAME], [tf:encoding_test.go]
    ("base64encode(\"Hello World\")", "\"SGVsbG8gV29ybGQ=\""),
    ("base64decode(\"SGVsbG8gV29ybGQ=\")", "\"Hello World\""),
    ("base64decode(\"this-is-an-invalid-base64-data\")", "error: base64decode(): failed to decode base64 data \"this-is-an-invalid-base64-data\""),
    ("base64gzip(\"test\")", "\"H4sIAAAAAAAA/ypJLS4BAAAA//8BAAD//wx+f9gEAAAA\""),
    ("csvdecode(\"a,b,c\\n1,2,3\\n4,5,6\")", "[{ a = \"1\", b = \"2\", c = \"3\" }, { a = \"4\", b = \"5\", c = \"6\" }]"),
    ("csvdecode(\"a,a\\n1,2\")", "error: csvdecode(): duplicate column name \"a\""),
    ("jsonencode({\"hello\" = \"world\"})", "\"{\\\"hello\\\":\\\"world\\\"}\""),
    ("jsonencode({a = [1, true]})", "\"{\\\"a\\\":[1,true]}\""),
    // [cty:json.go] Go's encoding/json escapes <, > and &
    ("jsonencode(\"<b>&</b>\")", "\"\\\"\\\\u003cb\\\\u003e\\\\u0026\\\\u003c/b\\\\u003e\\\"\""),
    // [cty:json.go] numbers in decimal, without an exponent
    ("jsonencode([1e21, 0.5, -3])", "\"[1000000000000000000000,0.5,-3]\""),
    ("jsondecode(\"{\\\"hello\\\": \\\"world\\\"}\")", "{ hello = \"world\" }"),
    ("jsondecode(\"true\")", "true"),
    ("textencodebase64(\"Hello World\", \"UTF-16LE\")", "\"SABlAGwAbABvACAAVwBvAHIAbABkAA==\""),
    ("textdecodebase64(\"SABlAGwAbABvACAAVwBvAHIAbABkAA==\", \"UTF-16LE\")", "\"Hello World\""),
    ("textencodebase64(\"x\", \"EBCDIC\")", "error: textencodebase64(): argument 2: \"EBCDIC\" is not a supported IANA encoding name or alias in this Terraform version"),
    ("urlencode(\"Hello World!\")", "\"Hello+World%21\""),
    ("urlencode(\"☃\")", "\"%E2%98%83\""),
    ("urlencode(\"foo=bar&bar=baz\")", "\"foo%3Dbar%26bar%3Dbaz\""),
    ("yamlencode({\"a\" = \"b\", \"c\" = \"d\"})", "\"\\\"a\\\": \\\"b\\\"\\n\\\"c\\\": \\\"d\\\"\\n\""),
    ("yamlencode({\"foo\" = [1, 2, 3], \"bar\" = \"baz\"})", "\"\\\"bar\\\": \\\"baz\\\"\\n\\\"foo\\\":\\n- 1\\n- 2\\n- 3\\n\""),
    ("yamlencode({\"foo\" = [1, {\"a\" = \"b\", \"c\" = \"d\"}, 3], \"bar\" = \"baz\"})", "\"\\\"bar\\\": \\\"baz\\\"\\n\\\"foo\\\":\\n- 1\\n- \\\"a\\\": \\\"b\\\"\\n  \\\"c\\\": \\\"d\\\"\\n- 3\\n\""),
    // [yaml] scalars, empty collections, literal blocks
    ("yamlencode(\"true\")", "\"\\\"true\\\"\\n\""),
    ("yamlencode(true)", "\"true\\n...\\n\""),
    ("yamlencode(0)", "\"0\\n...\\n\""),
    ("yamlencode({})", "\"{}\\n\""),
    ("yamlencode([])", "\"[]\\n\""),
    ("yamlencode([\"b\"])", "\"- \\\"b\\\"\\n\""),
    ("yamlencode(\"hello\\nworld\")", "\"|-\\n  hello\\n  world\\n\""),
    ("yamlencode({a = {b = \"line1\\nline2\\n\"}})", "\"\\\"a\\\":\\n  \\\"b\\\": |\\n    line1\\n    line2\\n\""),
    ("yamldecode(\"hello: world\")", "{ hello = \"world\" }"),
    ("yamldecode(\"a: 1\\nb: [x]\")", "{ a = 1, b = [\"x\"] }"),
    ("yamldecode(\"true\")", "true"),
    // ---- filesystem paths [doc:basename], [doc:dirname], [doc:pathexpand]
    ("basename(\"foo/bar/baz.txt\")", "\"baz.txt\""),
    ("basename(\"\")", "\".\""),
    ("dirname(\"foo/bar/baz.txt\")", "\"foo/bar\""),
    ("dirname(\"baz.txt\")", "\".\""),
    ("pathexpand(\"/etc/resolv.conf\")", "\"/etc/resolv.conf\""),
    ("startswith(abspath(\"x\"), \"/\")", "true"),
    // ---- date and time [doc:formatdate], [doc:timeadd], [doc:timecmp], [cty:datetime.go]
    ("formatdate(\"DD MMM YYYY hh:mm ZZZ\", \"2018-01-02T23:12:01Z\")", "\"02 Jan 2018 23:12 UTC\""),
    ("formatdate(\"EEEE, DD-MMM-YY hh:mm:ss ZZZ\", \"2018-01-02T23:12:01Z\")", "\"Tuesday, 02-Jan-18 23:12:01 UTC\""),
    ("formatdate(\"EEE, DD MMM YYYY hh:mm:ss ZZZ\", \"2018-01-02T23:12:01-08:00\")", "\"Tue, 02 Jan 2018 23:12:01 -0800\""),
    ("formatdate(\"MMM DD, YYYY\", \"2018-01-02T23:12:01Z\")", "\"Jan 02, 2018\""),
    ("formatdate(\"HH:mmaa\", \"2018-01-02T23:12:01Z\")", "\"11:12pm\""),
    ("formatdate(\"h'h'mm\", \"2018-01-02T23:12:01-08:00\")", "\"23h12\""),
    ("formatdate(\"YYYYY\", \"2018-01-02T23:12:01Z\")", "error: formatdate(): invalid date format verb \"YYYYY\": year must either be \"YY\" or \"YYYY\""),
    ("formatdate(\"YYYY\", \"2018-01-02\")", "error: formatdate(): argument 2: not a valid RFC3339 timestamp: end of string where \"T\" is expected"),
    ("timeadd(\"2017-11-22T00:00:00Z\", \"10m\")", "\"2017-11-22T00:10:00Z\""),
    ("timeadd(\"2017-11-22T00:00:00Z\", \"-1h30m\")", "\"2017-11-21T22:30:00Z\""),
    ("timeadd(\"2017-11-22T00:00:00+01:00\", \"24h\")", "\"2017-11-23T00:00:00+01:00\""),
    ("timeadd(\"2017-11-22T00:00:00Z\", \"1d\")", "error: timeadd(): time: unknown unit \"d\" in duration \"1d\""),
    ("timecmp(\"2017-11-22T00:00:00Z\", \"2017-11-22T00:00:00Z\")", "0"),
    ("timecmp(\"2017-11-22T00:00:00Z\", \"2017-11-22T01:00:00Z\")", "-1"),
    ("timecmp(\"2017-11-22T01:00:00Z\", \"2017-11-22T00:00:00Z\")", "1"),
    ("timecmp(\"2017-11-22T01:00:00Z\", \"2017-11-22T00:00:00-01:00\")", "0"),
    ("length(timestamp())", "20"),
    ("length(plantimestamp())", "20"),
    // ---- hash and crypto [doc:NAME], [tf:crypto_test.go]
    ("md5(\"hello world\")", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\""),
    ("sha1(\"hello world\")", "\"2aae6c35c94fcfb415dbe95f408b9ce91ee846ed\""),
    ("sha256(\"hello world\")", "\"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9\""),
    ("sha512(\"hello world\")", "\"309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f\""),
    ("base64sha256(\"hello world\")", "\"uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=\""),
    ("base64sha512(\"hello world\")", "\"MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==\""),
    ("uuidv5(\"dns\", \"tada\")", "\"faa898db-9b9d-5b75-86a9-149e7bb8e3b8\""),
    ("uuidv5(\"url\", \"tada\")", "\"2c1ff6b4-211f-577e-94de-d978b0caa16e\""),
    ("uuidv5(\"oid\", \"tada\")", "\"61eeea26-5176-5288-87fc-232d6ed30d2f\""),
    ("uuidv5(\"x500\", \"tada\")", "\"7e12415e-f7c9-57c3-9e43-52dc9950d264\""),
    ("uuidv5(\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\", \"tada\")", "\"faa898db-9b9d-5b75-86a9-149e7bb8e3b8\""),
    ("uuidv5(\"tada\", \"tada\")", "error: uuidv5(): uuidv5() doesn't support namespace tada (invalid UUID format)"),
    ("length(uuid())", "36"),
    ("bcrypt(\"x\")", "error: bcrypt(): bcrypt is not supported by ballast: its result is salted at random, so it changes on every run; hash the password outside the configuration and pass the hash in"),
    // ---- IP network [doc:NAME]
    ("cidrhost(\"10.12.112.0/20\", 16)", "\"10.12.112.16\""),
    ("cidrhost(\"10.12.112.0/20\", 268)", "\"10.12.113.12\""),
    ("cidrhost(\"fd00:fd12:3456:7890:00a2::/72\", 34)", "\"fd00:fd12:3456:7890::22\""),
    ("cidrhost(\"10.0.0.0/30\", -1)", "\"10.0.0.3\""),
    ("cidrhost(\"10.0.0.0/30\", 4)", "error: cidrhost(): host number 4 does not fit in 10.0.0.0/30 (4 addresses)"),
    ("cidrnetmask(\"172.16.0.0/12\")", "\"255.240.0.0\""),
    ("cidrsubnet(\"172.16.0.0/12\", 4, 2)", "\"172.18.0.0/16\""),
    ("cidrsubnet(\"10.1.2.0/24\", 4, 15)", "\"10.1.2.240/28\""),
    ("cidrsubnet(\"fd00:fd12:3456:7890::/56\", 16, 162)", "\"fd00:fd12:3456:7800:a200::/72\""),
    ("cidrsubnet(\"10.0.0.0/16\", 2, 4)", "error: cidrsubnet(): subnet number 4 does not fit in 2 new bits"),
    ("cidrsubnets(\"10.1.0.0/16\", 4, 4, 8, 4)", "[\"10.1.0.0/20\", \"10.1.16.0/20\", \"10.1.32.0/24\", \"10.1.48.0/20\"]"),
    ("cidrsubnets(\"fd00:fd12:3456:7890::/56\", 16, 16, 16, 32)", "[\"fd00:fd12:3456:7800::/72\", \"fd00:fd12:3456:7800:100::/72\", \"fd00:fd12:3456:7800:200::/72\", \"fd00:fd12:3456:7800:300::/88\"]"),
    ("cidrcontains(\"10.46.124.0/24\", \"10.46.124.13\")", "true"),
    ("cidrcontains(\"10.0.0.0/8\", \"10.1.0.0/16\")", "true"),
    ("cidrcontains(\"10.0.0.0\", \"10.0.0.1\")", "error: cidrcontains(): \"10.0.0.0\" is not a network in CIDR notation, such as 10.0.0.0/16"),
    // ---- type conversion [doc:NAME], [cty:conversion.go]
    ("tobool(true)", "true"),
    ("tobool(\"true\")", "true"),
    ("tobool(null)", "null"),
    ("tobool(\"no\")", "error: tobool(): cannot convert \"no\" to bool; only the strings \"true\" or \"false\" are allowed"),
    ("tobool(1)", "error: tobool(): cannot convert number to bool"),
    ("tolist([\"a\", \"b\", 3])", "[\"a\", \"b\", \"3\"]"),
    ("tolist([1, true])", "error: tolist(): cannot convert tuple to list of any single type"),
    ("tomap({\"a\" = \"foo\", \"b\" = true})", "{ a = \"foo\", b = \"true\" }"),
    ("tonumber(1)", "1"),
    ("tonumber(\"1\")", "1"),
    ("tonumber(\"no\")", "error: tonumber(): cannot convert \"no\" to number; given string must be a decimal representation of a number"),
    ("tostring(\"hello\")", "\"hello\""),
    ("tostring(1)", "\"1\""),
    ("tostring(true)", "\"true\""),
    ("tostring([])", "error: tostring(): cannot convert tuple to string"),
    // [tf:conversion.go] convert(value, type constraint)
    ("convert([1, \"a\"], list(string))", "[\"1\", \"a\"]"),
    ("convert({a = \"1\"}, map(number))", "{ a = 1 }"),
    ("convert(\"x\", number)", "error: convert(): a number is required, not \"x\""),
    ("ephemeralasnull(\"x\")", "\"x\""),
    ("issensitive(sensitive(\"x\"))", "true"),
    ("issensitive(\"x\")", "false"),
    ("nonsensitive(sensitive(\"x\"))", "\"x\""),
    // ---- type unification [doc:conditional expressions: "a number and a string give a string"]
    ("true ? 1 : \"a\"", "\"1\""),
    ("false ? 1 : \"a\"", "\"a\""),
    ("true ? 1 : true", "error: the true and false result expressions must have consistent types; the 'true' value is number, but the 'false' value is bool"),
    ("true ? null : 2", "null"),
    ("false ? [] : [1]", "[1]"),
    // ---- a template of exactly one interpolation yields the value [HCL spec: template expressions]
    ("\"${[1, 2]}\"", "[1, 2]"),
    ("\"${1 + 1}\"", "2"),
    ("\"${true}\"", "true"),
    ("\"x${1}\"", "\"x1\""),
    // ---- special forms and fallbacks [doc:try], [doc:can]
    ("try(tonumber(\"x\"), 7)", "7"),
    ("try({a = 1}.b, \"fallback\")", "\"fallback\""),
    ("try(tonumber(\"x\"))", "error: try(): no expression succeeded; the last failed with: tonumber(): cannot convert \"x\" to number; given string must be a decimal representation of a number"),
    ("can(regex(\"^a\", \"abc\"))", "true"),
    ("can(cidrhost(\"nope\", 1))", "false"),
    // ---- arity and names, as validate sees them
    ("upper(\"a\", \"b\")", "error: upper(): takes 1 argument, got 2"),
    ("lookup({})", "error: lookup(): takes 2 to 3 arguments, got 1"),
    ("join(\",\")", "error: join(): needs at least 2 arguments, got 1"),
    ("nosuch(1)", "error: nosuch(): there is no function named \"nosuch\""),
    ("lenght(\"x\")", "error: lenght(): there is no function named \"lenght\"; did you mean \"length\"?"),
];

/// Arithmetic and comparison on arbitrary-precision numbers, as Terraform evaluates them
/// (cty's 512-bit big.Float [cty:value_ops.go]; `%` keeps the dividend's sign), and the
/// exponent bound ballast adds.
const NUMBER_EXPRESSIONS: &[(&str, &str)] = &[
    ("0.1 + 0.2", "0.3"),
    ("0.1 + 0.2 == 0.3", "true"),
    ("9007199254740993", "9007199254740993"),
    ("9007199254740993 + 0", "9007199254740993"),
    ("-9007199254740993", "-9007199254740993"),
    ("1e20", "100000000000000000000"),
    ("1.5e-7", "0.00000015"),
    ("1 / 3", "0.3333333333333333"),
    ("2 / 3", "0.6666666666666666"),
    ("1 / 4", "0.25"),
    ("10 % 3", "1"),
    ("-7 % 3", "-1"),
    ("7 % -3", "1"),
    ("7.5 % 2", "1.5"),
    ("1 / 0", "error: division by zero"),
    ("9007199254740993 > 9007199254740992", "true"),
    ("9007199254740993 == 9007199254740992", "false"),
    ("1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300 * 1e300", "error: number is too large (more than 10000 decimal digits)"),
    ("\"x${9007199254740993}\"", "\"x9007199254740993\""),
    ("\"a${0.1 + 0.2}\"", "\"a0.3\""),
];

#[test]
fn numbers_are_arbitrary_precision_decimals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (src, expect) in NUMBER_EXPRESSIONS {
        let got = eval(src, dir.path());
        if got != *expect {
            failures.push(format!("{src}\n  expected: {expect}\n       got: {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `f` with a scope over an empty configuration in `dir`.
fn with_scope<T>(dir: &std::path::Path, f: impl FnOnce(&Scope<'_>) -> T) -> T {
    let cfg = Config::empty(dir);
    let (vars, sens, locals, res) = (
        BTreeMap::new(),
        BTreeSet::new(),
        HashMap::new(),
        HashMap::new(),
    );
    f(&Scope::new(&cfg, &vars, &sens, &locals, &res))
}

fn eval(src: &str, dir: &std::path::Path) -> String {
    with_scope(dir, |scope| eval_in(scope, src))
}

fn eval_in(scope: &Scope<'_>, src: &str) -> String {
    let expr =
        hcl_edit::parser::parse_expr(src).unwrap_or_else(|e| panic!("{src} does not parse: {e}"));
    match scope.eval(&Expr { expr, file: 0 }) {
        Ok(v) => v.to_string(),
        Err(d) => format!("error: {}", d.message),
    }
}

#[test]
fn every_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (src, expect) in CASES {
        let got = eval(src, dir.path());
        if got != *expect {
            failures.push(format!("{src}\n  expected: {expect}\n       got: {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_in_the_table_is_known_for_unknown_arguments() {
    for (src, _) in CASES {
        let name = src.split('(').next().unwrap_or_default();
        let name = name.trim_start_matches('!');
        if name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && !matches!(name, "nosuch" | "lenght" | "true" | "false")
        {
            assert!(
                funcs::is_known(name),
                "{name} is missing from funcs::FUNCTIONS"
            );
        }
    }
}

#[test]
fn file_functions_read_relative_to_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("motd.tftpl"),
        "%{ for n in names ~}\nhello ${n}\n%{ endfor ~}",
    )
    .expect("write");
    std::fs::write(dir.path().join("plain.txt"), "text").expect("write");
    assert_eq!(eval("file(\"plain.txt\")", dir.path()), "\"text\"");
    assert_eq!(eval("fileexists(\"plain.txt\")", dir.path()), "true");
    assert_eq!(eval("fileexists(\"nope.txt\")", dir.path()), "false");
    assert_eq!(
        eval(
            "templatefile(\"motd.tftpl\", {names = [\"a\", \"b\"]})",
            dir.path()
        ),
        "\"hello a\\nhello b\\n\""
    );
    let missing = eval("file(\"nope.txt\")", dir.path());
    assert!(
        missing.starts_with("error: file(): no file exists at \"nope.txt\"; this function works only with files that are distributed as part of the configuration source code"),
        "{missing}"
    );
    let unbound = eval("templatefile(\"motd.tftpl\", {})", dir.path());
    assert_eq!(
        unbound,
        "error: templatefile(): in motd.tftpl: unknown name \"names\""
    );
}

#[test]
fn unknown_arguments_give_unknown_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    with_scope(dir.path(), |scope| {
        for (f, n) in [
            ("upper", 1),
            ("cidrhost", 2),
            ("yamlencode", 1),
            ("sha256", 1),
        ] {
            let r = funcs::call(f, vec![Value::Unknown; n], scope);
            assert_eq!(r, Ok(Value::Unknown), "{f}");
        }
        // The arity is checked even when the arguments are unknown (as `validate` sees them).
        let r = funcs::call("upper", vec![Value::Unknown, Value::Unknown], scope);
        assert_eq!(r, Err("takes 1 argument, got 2".to_string()));
        // Nested unknowns: unknown unless the function only moves elements around.
        let partly = Value::List(vec![Value::from("a"), Value::Unknown]);
        assert_eq!(
            funcs::call("jsonencode", vec![partly.clone()], scope),
            Ok(Value::Unknown)
        );
        assert_eq!(
            funcs::call("length", vec![partly], scope),
            Ok(Value::from(2i64))
        );
    });
}

#[test]
fn the_language_reference_lists_every_function() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/language.md"
    ))
    .expect("docs/language.md");
    let section = doc
        .split("## Functions")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Functions section");
    let missing: Vec<&str> = funcs::FUNCTIONS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| !section.contains(&format!("`{n}`")) && !section.contains(&format!("`{n}(")))
        .collect();
    assert!(missing.is_empty(), "not in docs/language.md: {missing:?}");
}

#[test]
fn every_function_has_a_row_in_the_table() {
    let untested: Vec<&str> = funcs::FUNCTIONS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| !CASES.iter().any(|(src, _)| src.contains(&format!("{n}("))))
        .collect();
    // The file functions are tested against real files below.
    let by_files = [
        "file",
        "filebase64",
        "fileexists",
        "fileset",
        "templatefile",
        "filebase64sha256",
        "filebase64sha512",
        "filemd5",
        "filesha1",
        "filesha256",
        "filesha512",
        "rsadecrypt",
    ];
    let untested: Vec<&str> = untested
        .into_iter()
        .filter(|n| !by_files.contains(n))
        .collect();
    assert!(untested.is_empty(), "no row in CASES: {untested:?}");
}

#[test]
fn file_hashes_and_globs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("hello.txt"), "hello world").expect("write");
    std::fs::create_dir_all(p.join("files/sub")).expect("mkdir");
    for f in [
        "files/a.txt",
        "files/b.json",
        "files/sub/c.txt",
        "files/sub/d.md",
    ] {
        std::fs::write(p.join(f), "x").expect("write");
    }
    std::fs::write(p.join("bin.dat"), [0xff_u8, 0xfe, 0x00]).expect("write");
    let cases = [
        // [doc:filemd5] and friends: the same digests as md5("hello world") etc.
        ("filemd5(\"hello.txt\")", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\""),
        ("filesha1(\"hello.txt\")", "\"2aae6c35c94fcfb415dbe95f408b9ce91ee846ed\""),
        ("filesha256(\"hello.txt\")", "\"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9\""),
        ("substr(filesha512(\"hello.txt\"), 0, 16)", "\"309ecc489c12d6eb\""),
        ("filebase64sha256(\"hello.txt\")", "\"uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=\""),
        ("filebase64sha512(\"hello.txt\")", "\"MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==\""),
        ("filebase64(\"bin.dat\")", "\"//4A\""),
        // [tf:filesystem.go] file() refuses text that is not UTF-8
        ("file(\"bin.dat\")", "error: file(): contents of \"bin.dat\" are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents or the other file functions (e.g. filemd5, filesha256) to obtain file hashing results instead"),
        // [doc:fileset]
        ("fileset(\"files\", \"*.txt\")", "[\"a.txt\"]"),
        ("fileset(\"files\", \"**/*.txt\")", "[\"a.txt\", \"sub/c.txt\"]"),
        ("fileset(\"files\", \"{sub/*.md,*.json}\")", "[\"b.json\", \"sub/d.md\"]"),
        ("fileset(\"files\", \"**\")", "[\"a.txt\", \"b.json\", \"sub/c.txt\", \"sub/d.md\"]"),
        ("fileexists(\"files\")", "error: fileexists(): files is a directory, not a file"),
        ("rsadecrypt(\"x\", \"y\")", "error: rsadecrypt(): rsadecrypt is not supported by ballast: pass the decrypted value in as a sensitive variable"),
    ];
    let mut failures = Vec::new();
    for (src, expect) in cases {
        let got = eval(src, p);
        if got != expect {
            failures.push(format!("{src}\n  expected: {expect}\n       got: {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What `validate` sees: every call in the configuration is checked when the dependency graph
/// is built, before anything is evaluated, wherever it is (locals, outputs, resources,
/// conditions), even when its arguments could only be known after apply.
#[test]
fn calls_are_checked_without_evaluating() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.hcl"),
        "locals {\n  a = lenght([1])\n  b = upper(\"x\", \"y\")\n  c = max([1, 2]...)\n  d = sort(toset([\"b\", \"a\"]))\n  e = convert([1], list(object({a = optional(string)})))\n}\n\noutput \"o\" {\n  value = formatdate(\"YYYY\")\n}\n",
    )
    .expect("write");
    let cfg = ballast_lang::config::load(dir.path()).expect("loads");
    let errs = match ballast_lang::graph::Graph::build(&cfg) {
        Ok(_) => panic!("bad calls were accepted"),
        Err(d) => d.0.into_iter().map(|d| d.message).collect::<Vec<_>>(),
    };
    assert_eq!(
        errs,
        [
            "lenght(): there is no function named \"lenght\"; did you mean \"length\"?",
            "upper(): takes 1 argument, got 2",
            "formatdate(): takes 2 arguments, got 1",
        ]
    );
}

/// [doc:sensitive], [doc:nonsensitive]: sensitive() marks what it produces; nonsensitive()
/// takes the mark off; issensitive() reads it without marking its own result.
#[test]
fn sensitivity_functions_mark_the_evaluation() {
    let dir = tempfile::tempdir().expect("tempdir");
    with_scope(dir.path(), |scope| {
        let run = |src: &str| {
            scope.take_sensitive();
            let v = eval_in(scope, src);
            (v, scope.take_sensitive())
        };
        assert_eq!(run("upper(sensitive(\"x\"))"), ("\"X\"".into(), true));
        assert_eq!(
            run("nonsensitive(sensitive(\"x\"))"),
            ("\"x\"".into(), false)
        );
        assert_eq!(run("issensitive(sensitive(\"x\"))"), ("true".into(), false));
        assert_eq!(run("\"plain\""), ("\"plain\"".into(), false));
        // The branch a conditional does not take does not mark its result.
        assert_eq!(
            run("false ? sensitive(\"x\") : \"y\""),
            ("\"y\"".into(), false)
        );
        assert_eq!(
            run("true ? sensitive(\"x\") : \"y\""),
            ("\"x\"".into(), true)
        );
    });
}

/// No panic on any argument: every function, called with every combination (up to three
/// arguments) of awkward values.
#[test]
fn no_function_panics_on_odd_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = vec![
        Value::Null,
        Value::Bool(true),
        Value::from(-1i64),
        Value::from(1e300),
        Value::from(0.5),
        Value::Number(ballast_sdk::Number::parse("-9.9e10000").expect("a number")),
        Value::from(""),
        Value::from("10.0.0.0/8"),
        Value::from("fd00::/8"),
        Value::from("2018-01-02T23:12:01Z"),
        Value::from("%[9]s%-0+#x %.99999f"),
        Value::from("/(/"),
        Value::from("e\u{301}💃🏿\r\n"),
        Value::List(vec![]),
        Value::List(vec![Value::from(1i64), Value::from("a"), Value::Null]),
        Value::Map(BTreeMap::new()),
        Value::Map(BTreeMap::from([(
            "a".to_string(),
            Value::List(vec![Value::from("x")]),
        )])),
    ];
    let small: Vec<Value> = pool.iter().step_by(3).cloned().collect();
    with_scope(dir.path(), |scope| {
        for (name, min, max) in funcs::FUNCTIONS {
            if matches!(
                *name,
                "try" | "can" | "sensitive" | "nonsensitive" | "issensitive"
            ) {
                continue;
            }
            for n in *min..=(*max).min(3) {
                let values = if n == 3 { &small } else { &pool };
                let mut idx = vec![0usize; n];
                loop {
                    let args: Vec<Value> = idx.iter().map(|i| values[*i].clone()).collect();
                    let _ = funcs::call(name, args, scope);
                    // next combination
                    let mut k = 0;
                    while k < n {
                        idx[k] += 1;
                        if idx[k] < values.len() {
                            break;
                        }
                        idx[k] = 0;
                        k += 1;
                    }
                    if k == n {
                        break;
                    }
                }
            }
        }
    });
}
