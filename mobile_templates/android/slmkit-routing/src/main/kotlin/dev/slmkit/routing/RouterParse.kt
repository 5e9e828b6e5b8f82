package dev.slmkit.routing

/**
 * Reading a small model's router answer (runtime/router/parse.py): messy text in, label + confidence out.
 * Text is stripped and lowered as Python does (PyText), JSON read as json.loads reads it (Json), and
 * patterns keep Python's `\w \b \s` (PyRegex).
 */
data class ParsedRoute(val label: String, val confidence: Double?)

object RouterParse {
    val LABEL_KEYS = listOf("complexity", "tier", "label", "category", "class", "difficulty")
    val CONFIDENCE_KEYS = listOf("confidence", "conf", "probability", "certainty")
    private val TRAILING_COMMA = PyRegex.compile(",\\s*([}\\]])")
    private val RATIO = PyRegex.compile("(\\d+(?:\\.\\d+)?)\\s*/\\s*(10|100)")
    private val PERCENT = PyRegex.compile("(\\d+(?:\\.\\d+)?)\\s*(%?)")

    /** Every balanced {...} span, outermost first, ignoring braces inside strings. */
    fun jsonObjects(text: String): List<String> {
        val spans = ArrayList<String>()
        var depth = 0
        var start = -1
        var quote: Char? = null
        var escaped = false
        for ((i, ch) in text.withIndex()) {
            if (quote != null) {
                if (escaped) escaped = false
                else if (ch == '\\') escaped = true
                else if (ch == quote) quote = null
                continue
            }
            if ((ch == '"' || ch == '\'') && depth > 0) quote = ch
            else if (ch == '{') { if (depth == 0) start = i; depth++ }
            else if (ch == '}' && depth > 0) { depth--; if (depth == 0) spans.add(text.substring(start, i + 1)) }
        }
        return spans
    }

    private fun loadsLenient(span: String): Map<String, Any?>? {
        for (candidate in listOf(span, TRAILING_COMMA.replace(span.replace('\'', '"'), "$1"))) {
            val parsed = Json.parseOrNull(candidate) ?: continue
            @Suppress("UNCHECKED_CAST")
            if (parsed.value is Map<*, *>) return parsed.value as Map<String, Any?>
        }
        return null
    }

    /** 0.85, "0.85", 85, "85%", "8/10" -> 0.85 / 0.8; anything else (or out of range) -> null. */
    fun parseConfidence(value: Any?): Double? {
        val number: Double = when (value) {
            is Boolean -> return null
            is Double -> value
            is String -> {
                val text = PyText.strip(value)
                RATIO.matchEntire(text)?.let {
                    return parseConfidence(Digits.toDouble(it.groupValues[1]) / Digits.toDouble(it.groupValues[2]))
                }
                val match = PERCENT.matchEntire(text) ?: return null
                val n = Digits.toDouble(match.groupValues[1])
                if (match.groupValues[2].isNotEmpty()) return parseConfidence(n / 100)
                n
            }
            else -> return null
        }
        if (number.isNaN() || number.isInfinite() || number < 0) return null
        if (number <= 1) return number
        if (number <= 100) return number / 100
        return null
    }

    private fun labelOf(value: Any?, labels: List<String>): String? {
        if (value !is String) return null
        val word = PyText.lower(PyText.strip(PyText.strip(value), "."))
        return if (word in labels) word else null
    }

    private fun fromObject(obj: Map<String, Any?>, labels: List<String>): ParsedRoute? {
        val lowered = LinkedHashMap<String, Any?>()
        for ((k, v) in obj) lowered[PyText.lower(PyText.strip(k))] = v  // a key seen again keeps its place, takes the value
        val labelKey = LABEL_KEYS.firstOrNull { it in lowered } ?: return null
        val label = labelOf(lowered[labelKey], labels) ?: return null
        val confidenceKey = CONFIDENCE_KEYS.firstOrNull { it in lowered }
        return ParsedRoute(label, if (confidenceKey == null) null else parseConfidence(lowered[confidenceKey]))
    }

    /** The router's verdict, or null when the text does not name exactly one label clearly. */
    fun parse(text: String, labels: List<String> = listOf("simple", "medium", "complex")): ParsedRoute? {
        for (span in jsonObjects(text)) {
            val obj = loadsLenient(span) ?: continue
            fromObject(obj, labels)?.let { return it }
        }
        val alternatives = labels.joinToString("|")
        val keyed = PyRegex.compile("[\"']?(?:${LABEL_KEYS.joinToString("|")})[\"']?\\s*[:=]\\s*[\"']?($alternatives)\\b", ignoreCase = true).find(text)
        // IGNORECASE also matches "sımple" (dotless i), which is no label: such a match does not count.
        if (keyed != null && PyText.lower(keyed.groupValues[1]) in labels) {
            val confidence = PyRegex.compile("[\"']?(?:${CONFIDENCE_KEYS.joinToString("|")})[\"']?\\s*[:=]\\s*[\"']?(\\d+(?:\\.\\d+)?\\s*%?)", ignoreCase = true).find(text)
            return ParsedRoute(PyText.lower(keyed.groupValues[1]),
                if (confidence != null) parseConfidence(confidence.groupValues[1]) else null)
        }
        val named = PyRegex.compile("\\b($alternatives)\\b", ignoreCase = true).findAll(text).map { PyText.lower(it.groupValues[1]) }.filter { it in labels }.toSet()
        return if (named.size == 1) ParsedRoute(named.first(), null) else null
    }
}
