package dev.slmkit.routing

/**
 * Python's `str` operations the routing contract uses. Kotlin's own differ on inputs the golden
 * vectors pin: `trim()` keeps U+0085 (Python strips it), and Java's `(?U)` regex classes count
 * combining marks as word characters and lack U+001C-U+001F in `\s`. Lowercasing is
 * `lowercase(Locale.ROOT)`, which applies the final-sigma rule as Python's `str.lower()` does, and
 * Java strings compare code units, as Python compares code points.
 */
object PyText {
    /** `str.isspace()` for one code point: White_Space plus U+001C-U+001F (bidi class B/S in Python). */
    fun isSpace(cp: Int): Boolean = cp in 0x09..0x0D || cp in 0x1C..0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        cp in 0x2000..0x200A || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000

    /** `str.strip()`, or `str.strip(chars)` with `chars` given. */
    fun strip(text: String, chars: String? = null): String {
        val drop: (Int) -> Boolean = if (chars == null) ::isSpace else { cp -> chars.codePoints().anyMatch { it == cp } }
        var start = 0
        var end = text.length
        while (start < end && drop(text.codePointAt(start))) start += Character.charCount(text.codePointAt(start))
        while (end > start && drop(text.codePointBefore(end))) end -= Character.charCount(text.codePointBefore(end))
        return text.substring(start, end)
    }

    /** `str.lower()`: Java's ROOT-locale lowercase (full mappings, final sigma). */
    fun lower(text: String): String = text.lowercase(java.util.Locale.ROOT)
}

/**
 * Patterns written in Python `re` syntax, compiled by java.util.regex with Python's meaning:
 * `\w \W \b \B \s \S \d \D` become explicit Unicode classes, and only "\n" ends a line (UNIX_LINES).
 * Case-insensitive patterns do not use Java's case folding: each letter becomes the class of what
 * Python's re.IGNORECASE matches (simple case mappings plus sre's equivalences: i ı İ, s ſ, k K, σ ς).
 */
object PyRegex {
    private const val WORD = "\\p{L}\\p{N}_"
    private const val SPACE = "\\p{IsWhite_Space}\\x{1C}-\\x{1F}"
    /** Letters sre treats as equal beyond simple lower/upper case (Lib/re/_casefix.py, Python 3.11). */
    private val EQUIVALENTS = mapOf('i' to "\u0131\u0130", 's' to "\u017F", 'k' to "\u212A",
        '\u03C3' to "\u03C2\u03A3", '\u03C2' to "\u03C3\u03A3")

    /** What Python's IGNORECASE matches for the letter `c`, as class members ("" when case does not apply). */
    private fun caseClass(c: Char): String {
        val lower = Character.toLowerCase(c)
        val upper = Character.toUpperCase(c)
        if (lower == c && upper == c && c !in EQUIVALENTS) return ""
        return buildString {
            append(c)
            if (lower != c) append(lower)
            if (upper != c) append(upper)
            append(EQUIVALENTS[lower] ?: "")
        }
    }

    fun translate(pattern: String, ignoreCase: Boolean = false): String {
        val out = StringBuilder()
        var inClass = false
        var i = 0
        while (i < pattern.length) {
            val c = pattern[i]
            if (c == '\\' && i + 1 < pattern.length) {
                val next = pattern[i + 1]
                i += 2
                out.append(when {
                    next == 'w' && !inClass -> "[$WORD]"
                    next == 'w' -> WORD
                    next == 'W' && !inClass -> "[^$WORD]"
                    next == 's' && !inClass -> "[$SPACE]"
                    next == 's' -> SPACE
                    next == 'S' && !inClass -> "[^$SPACE]"
                    next == 'd' -> "\\p{Nd}"
                    next == 'D' && !inClass -> "\\P{Nd}"
                    next == 'b' && !inClass -> "(?:(?<=[$WORD])(?![$WORD])|(?<![$WORD])(?=[$WORD]))"
                    next == 'B' && !inClass -> "(?:(?<=[$WORD])(?=[$WORD])|(?<![$WORD])(?![$WORD]))"
                    next in "WSDbB" -> throw IllegalArgumentException("\\$next inside a character class has no translation: $pattern")
                    else -> "\\$next"
                })
                continue
            }
            if (ignoreCase && !Character.isSurrogate(c)) {
                val members = caseClass(c)
                if (members.isNotEmpty()) {
                    if (inClass && i + 2 < pattern.length && pattern[i + 1] == '-' && c in 'a'..'z' && pattern[i + 2] in 'a'..'z') {
                        val end = pattern[i + 2]  // an ASCII range: both cases, and the equivalents of the letters it spans
                        out.append("$c-$end${c.uppercaseChar()}-${end.uppercaseChar()}")
                        for (letter in "isk") if (letter in c..end) out.append(EQUIVALENTS.getValue(letter))
                        i += 3
                        continue
                    }
                    out.append(if (inClass) members else "[$members]")
                    i++
                    continue
                }
            }
            if (c == '[' && !inClass) {
                inClass = true
                out.append(c)
                if (i + 1 < pattern.length && pattern[i + 1] == '^') { out.append('^'); i++ }
                if (i + 1 < pattern.length && pattern[i + 1] == ']') { out.append("\\]"); i++ }
            } else {
                if (c == ']' && inClass) inClass = false
                else if (c == '[' && inClass) { out.append("\\["); i++; continue }  // literal in Python, a nested set in Java
                out.append(c)
            }
            i++
        }
        return out.toString()
    }

    /** The pattern translated; `ignoreCase` is Unicode-aware, `multiline` makes ^ $ match at each "\n". */
    fun compile(pattern: String, ignoreCase: Boolean = false, multiline: Boolean = false): Regex =
        Regex("(?d${if (multiline) "m" else ""})" + translate(pattern, ignoreCase))
}
