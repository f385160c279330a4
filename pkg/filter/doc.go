// Package filter implements AWS Lambda's event filtering (FilterCriteria) for DynamoDB stream
// records, so that a pattern written for a Lambda trigger works unchanged in poller's filters list.
//
// A pattern is a JSON object that mirrors the record's JSON (eventName, dynamodb.Keys,
// dynamodb.NewImage.<attribute>.S, ...). Fields named in one object must all match (AND); the values
// listed for a field are alternatives (OR); "$or": [{...}, {...}] at any level lists alternative
// objects; the patterns of a Set are alternatives too. A record must hold every field a pattern
// names, except under {"exists": false}.
//
// A value list holds exact values (strings, numbers, true, false, null, "") and operators:
// prefix, suffix (both also with {"equals-ignore-case": ...}), equals-ignore-case, wildcard,
// anything-but (a value, a list, or prefix, suffix, equals-ignore-case, wildcard), numeric
// (=, <, <=, >, >= and ranges), exists, cidr and exactly. Matching follows Lambda's rules (those of
// EventBridge and its Event Ruler library): strings compare exactly, without case folding or
// normalisation; an array in the record matches when one of its elements does, and fields of one
// object pattern are never matched against different elements of one array; exists looks only at
// leaves, so {"Attr": [{"exists": true}]} never matches a DynamoDB attribute, which is an object
// such as {"S": "x"} (write {"Attr": {"S": [{"exists": true}]}}); anything-but needs the field to be
// present and matches values of any other type; a DynamoDB number such as {"N": "42"} is a string,
// so prefix and exact strings apply to it and a bare number 42 does not match it.
//
// One deliberate difference from Lambda: numeric rules compare DynamoDB numbers. In Lambda a
// numeric rule never matches {"N": "42"}, since the record holds that number as a string; in
// poller, numeric rules read the strings under "N" and the elements of "NS" as numbers and compare
// them as exact decimals (DynamoDB numbers carry up to 38 digits, more than float64 holds), so
// {"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 1000]}]}}}} does what it says.
// JSON numbers of the record (SizeBytes, ApproximateCreationDateTime) compare exactly as well, and
// without Lambda's range limit of ±5e9.
//
// Compile parses a pattern once and reports what is wrong with it, and where, as a *PatternError.
// Match then walks the record's Go struct in place of its JSON, without marshalling it.
package filter
