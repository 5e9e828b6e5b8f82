package dev.slmkit.routing

/**
 * The classifier router's features (runtime/router/features.py), line by line: lowercase, words =
 * maximal runs of Unicode letters/digits (Python's [^\W_]), FNV-1a 32-bit of the UTF-8 feature
 * strings modulo the bucket count, binary presence, L2-normalized; plus whole-request numbers.
 */
object Features {
    private const val FNV_OFFSET = 0x811C9DC5L
    private const val FNV_PRIME = 0x01000193L

    fun fnv1a(text: String): Long {
        var h = FNV_OFFSET
        for (b in text.toByteArray(Charsets.UTF_8)) {
            h = ((h xor (b.toLong() and 0xFF)) * FNV_PRIME) and 0xFFFFFFFFL
        }
        return h
    }

    /** Python's str.isalnum() for one code point: letters and every kind of number. */
    private fun isWordChar(cp: Int): Boolean {
        if (Character.isLetter(cp)) return true
        val type = Character.getType(cp)
        return type == Character.DECIMAL_DIGIT_NUMBER.toInt() || type == Character.LETTER_NUMBER.toInt() ||
            type == Character.OTHER_NUMBER.toInt()
    }

    /** Python's str.isdigit(): decimal digits, and other numbers whose value is a single digit (², ①). */
    fun isDigit(cp: Int): Boolean {
        val type = Character.getType(cp)
        if (type == Character.DECIMAL_DIGIT_NUMBER.toInt()) return true
        return type == Character.OTHER_NUMBER.toInt() && Character.getNumericValue(cp) in 0..9
    }

    fun words(text: String): List<String> {
        val lowered = PyText.lower(text)
        val words = ArrayList<String>()
        val current = StringBuilder()
        var i = 0
        while (i < lowered.length) {
            val cp = lowered.codePointAt(i)
            if (isWordChar(cp)) current.appendCodePoint(cp)
            else if (current.isNotEmpty()) { words.add(current.toString()); current.setLength(0) }
            i += Character.charCount(cp)
        }
        if (current.isNotEmpty()) words.add(current.toString())
        return words
    }

    /** w:word, b:word word, c:3 code points of " word ". */
    fun featureStrings(text: String): Set<String> {
        val words = words(text)
        val features = LinkedHashSet<String>()
        for (w in words) features.add("w:$w")
        for (i in 0 until words.size - 1) features.add("b:${words[i]} ${words[i + 1]}")
        for (w in words) {
            val padded = " $w ".codePoints().toArray()
            for (i in 0 until padded.size - 2) features.add("c:" + String(padded, i, 3))
        }
        return features
    }

    /** Bucket -> weight, L2-normalized over distinct buckets, sorted by bucket. */
    fun hashed(text: String, buckets: Int): Map<Int, Double> {
        val indices = featureStrings(text).map { (fnv1a(it) % buckets).toInt() }.toSortedSet()
        if (indices.isEmpty()) return emptyMap()
        val value = 1.0 / Math.sqrt(indices.size.toDouble())
        return indices.associateWith { value }
    }

    /** Whole-request numbers, scaled to roughly 0..1 (log_user_chars, log_user_lines, log_system_chars, digit_share). */
    fun dense(system: String, user: String): List<Double> {
        val userLength = Prompts.codePoints(user)
        var digits = 0
        user.codePoints().forEach { if (isDigit(it)) digits++ }
        return listOf(
            Math.log1p(userLength.toDouble()) / 12.0,
            Math.log1p(user.count { it == '\n' }.toDouble()) / 8.0,
            Math.log1p(Prompts.codePoints(system).toDouble()) / 10.0,
            if (userLength > 0) digits.toDouble() / userLength else 0.0
        )
    }

    /** The truncated request as the featurizer reads it (system and user on separate lines). */
    fun classifierText(system: String, user: String): String = if (system.isNotEmpty()) "$system\n$user" else user
}
