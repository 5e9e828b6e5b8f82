package dev.slmkit.routing

/**
 * A small strict JSON reader (RFC 8259, plus NaN/Infinity as Python's json accepts), so the
 * routing core needs no Android API and no library: objects are LinkedHashMap (a repeated key
 * keeps its last value, as in Python), arrays List, numbers Double, and null.
 */
class JsonException(message: String) : Exception(message)

object Json {
    /** `json.loads(text)`; with `integers`, integral literals (no fraction, no exponent) stay Long, as
     *  Python's int (what a StrictInt field such as a router head's `buckets` needs), else every number is Double. */
    fun parse(text: String, integers: Boolean = false): Any? {
        val reader = Reader(text, integers)
        reader.skipSpace()
        val value = reader.value()
        reader.skipSpace()
        if (reader.pos != text.length) throw JsonException("extra data at ${reader.pos}")
        return value
    }

    /** Parse, or null when the text is not JSON at all. */
    fun parseOrNull(text: String): Wrapped? = try { Wrapped(parse(text)) } catch (e: JsonException) { null }

    /** Distinguishes "parsed to null" from "did not parse". */
    class Wrapped(val value: Any?)

    /** Nesting deeper than this is not JSON (runtime/router/parse.py MAX_JSON_DEPTH), nor an integer literal of
     *  more digits than this (Python's int_max_str_digits, 4300 by default). */
    const val MAX_DEPTH = 512
    const val MAX_INTEGER_DIGITS = 4300

    private class Reader(val s: String, val integers: Boolean) {
        var pos = 0
        var depth = 0

        fun skipSpace() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) pos++
        }

        fun value(): Any? {
            if (pos >= s.length) throw JsonException("unexpected end")
            return when (s[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                'N' -> literal("NaN", Double.NaN)
                'I' -> literal("Infinity", Double.POSITIVE_INFINITY)
                else -> number()
            }
        }

        fun literal(word: String, result: Any?): Any? {
            if (!s.startsWith(word, pos)) throw JsonException("bad literal at $pos")
            pos += word.length
            return result
        }

        fun obj(): Map<String, Any?> {
            if (++depth > MAX_DEPTH) throw JsonException("nested deeper than $MAX_DEPTH")
            try { return objBody() } finally { depth-- }
        }

        fun objBody(): Map<String, Any?> {
            val map = LinkedHashMap<String, Any?>()
            pos++
            skipSpace()
            if (pos < s.length && s[pos] == '}') { pos++; return map }
            while (true) {
                skipSpace()
                if (pos >= s.length || s[pos] != '"') throw JsonException("expected a key at $pos")
                val key = string()
                skipSpace()
                if (pos >= s.length || s[pos] != ':') throw JsonException("expected ':' at $pos")
                pos++
                skipSpace()
                map[key] = value()
                skipSpace()
                if (pos >= s.length) throw JsonException("unexpected end")
                if (s[pos] == ',') { pos++; continue }
                if (s[pos] == '}') { pos++; return map }
                throw JsonException("expected ',' or '}' at $pos")
            }
        }

        fun array(): List<Any?> {
            if (++depth > MAX_DEPTH) throw JsonException("nested deeper than $MAX_DEPTH")
            try { return arrayBody() } finally { depth-- }
        }

        fun arrayBody(): List<Any?> {
            val list = ArrayList<Any?>()
            pos++
            skipSpace()
            if (pos < s.length && s[pos] == ']') { pos++; return list }
            while (true) {
                skipSpace()
                list.add(value())
                skipSpace()
                if (pos >= s.length) throw JsonException("unexpected end")
                if (s[pos] == ',') { pos++; continue }
                if (s[pos] == ']') { pos++; return list }
                throw JsonException("expected ',' or ']' at $pos")
            }
        }

        fun string(): String {
            val out = StringBuilder()
            pos++
            while (true) {
                if (pos >= s.length) throw JsonException("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return out.toString()
                    c == '\\' -> {
                        if (pos >= s.length) throw JsonException("bad escape")
                        when (val e = s[pos++]) {
                            '"' -> out.append('"'); '\\' -> out.append('\\'); '/' -> out.append('/')
                            'b' -> out.append('\b'); 'f' -> out.append('\u000C'); 'n' -> out.append('\n')
                            'r' -> out.append('\r'); 't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) throw JsonException("bad \\u escape")
                                val hex = s.substring(pos, pos + 4)
                                if (!hex.all { it in '0'..'9' || it in 'a'..'f' || it in 'A'..'F' }) throw JsonException("bad \\u escape")
                                out.append(hex.toInt(16).toChar())
                                pos += 4
                            }
                            else -> throw JsonException("bad escape \\$e")
                        }
                    }
                    c < ' ' -> throw JsonException("control character in string")
                    else -> out.append(c)
                }
            }
        }

        fun number(): Any {
            val start = pos
            if (s.startsWith("-Infinity", pos)) { pos += 9; return Double.NEGATIVE_INFINITY }
            var integral = true
            if (pos < s.length && s[pos] == '-') pos++
            if (pos < s.length && s[pos] == '0') pos++
            else if (pos < s.length && s[pos] in '1'..'9') while (pos < s.length && s[pos] in '0'..'9') pos++
            else throw JsonException("bad number at $start")
            if (pos < s.length && s[pos] == '.') {
                integral = false
                pos++
                if (pos >= s.length || s[pos] !in '0'..'9') throw JsonException("bad number at $start")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            if (pos < s.length && (s[pos] == 'e' || s[pos] == 'E')) {
                integral = false
                pos++
                if (pos < s.length && (s[pos] == '+' || s[pos] == '-')) pos++
                if (pos >= s.length || s[pos] !in '0'..'9') throw JsonException("bad number at $start")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            val text = s.substring(start, pos)
            if (integral && text.count { it in '0'..'9' } > MAX_INTEGER_DIGITS) throw JsonException("an integer of more than $MAX_INTEGER_DIGITS digits")
            return if (integers && integral) text.toLongOrNull() ?: text.toDouble() else text.toDouble()
        }
    }
}

/** Typed reads of parsed JSON, with one clear message when a file has the wrong shape. */
@Suppress("UNCHECKED_CAST")
fun Any?.obj(what: String = "value"): Map<String, Any?> = this as? Map<String, Any?> ?: throw JsonException("$what is not an object")

@Suppress("UNCHECKED_CAST")
fun Any?.list(what: String = "value"): List<Any?> = this as? List<Any?> ?: throw JsonException("$what is not an array")

fun Any?.str(what: String = "value"): String = this as? String ?: throw JsonException("$what is not a string")

fun Any?.num(what: String = "value"): Double = this as? Double ?: throw JsonException("$what is not a number")

/** Serialize (for reports and traces): keys in insertion order, numbers as Kotlin prints doubles. */
fun toJson(value: Any?): String = when (value) {
    null -> "null"
    is String -> buildString {
        append('"')
        for (c in value) when {
            c == '"' -> append("\\\"")
            c == '\\' -> append("\\\\")
            c == '\n' -> append("\\n")
            c < ' ' -> append(String.format("\\u%04x", c.code))
            else -> append(c)
        }
        append('"')
    }
    is Boolean, is Int, is Long -> value.toString()
    is Double -> if (value == Math.floor(value) && !value.isInfinite() && Math.abs(value) < 1e15) value.toLong().toString() else value.toString()
    is Map<*, *> -> value.entries.joinToString(",", "{", "}") { "${toJson(it.key.toString())}:${toJson(it.value)}" }
    is List<*> -> value.joinToString(",", "[", "]") { toJson(it) }
    else -> toJson(value.toString())
}
