package dev.slmkit.routing

/** The self-rating check (runtime/confidence/rating.py): "how sure, 1-10" -> rating, escalate or not. */
object Confidence {
    private const val NUMBER = "(10|[1-9](?:\\.\\d+)?)"
    // Python's patterns (runtime/confidence/rating.py) through PyRegex: Python's \d \w \b \s, Unicode case,
    // ^ $ at each "\n" only (Java alone also ends lines at \r, U+0085, U+2028, U+2029).
    private val PATTERNS = listOf(
        "(?<![\\d.\\-])$NUMBER\\s*(?:/|out of)\\s*10\\b",
        "\\b(?:rating|rate|score|confidence|confident)\\b[^0-9\\n\\-]{0,20}(?<![\\d.\\-])$NUMBER(?![\\d.]*\\d)",
        "^[^\\w\\-]*$NUMBER[^\\w\\-]*$",
        "(?<![\\d.\\-])$NUMBER(?![\\d]|\\.\\d)"
    ).map { PyRegex.compile(it, ignoreCase = true, multiline = true) }

    fun parseRating(text: String): Double? {
        for (pattern in PATTERNS) {
            val match = pattern.find(text) ?: continue
            return Digits.toDouble(match.groupValues[1])
        }
        return null
    }

    /** (rating, parsed?) with the spec's fallback for text that holds no rating. */
    fun ratingOrDefault(text: String, unparsableRating: Double): Pair<Double, Boolean> {
        val rating = parseRating(text)
        return if (rating != null) Pair(rating, true) else Pair(unparsableRating, false)
    }

    /** Below the threshold escalates; the threshold itself is enough. */
    fun shouldEscalate(rating: Double, threshold: Double): Boolean = rating < threshold
}

/** Python's float() reads any Unicode decimal digit; map them to ASCII first. */
object Digits {
    fun toDouble(text: String): Double {
        val ascii = StringBuilder()
        var i = 0
        while (i < text.length) {
            val cp = text.codePointAt(i)
            val digit = Character.digit(cp, 10)
            if (digit >= 0) ascii.append('0' + digit) else ascii.appendCodePoint(cp)
            i += Character.charCount(cp)
        }
        return ascii.toString().toDouble()
    }
}
