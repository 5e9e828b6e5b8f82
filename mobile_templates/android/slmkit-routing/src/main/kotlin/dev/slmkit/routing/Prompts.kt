package dev.slmkit.routing

/** Prompt rendering (runtime/prompts.py). Lengths are Unicode code points, never UTF-16 units. */
object Prompts {
    private val PLACEHOLDER = Regex("\\{([a-z_]+)\\}")

    fun codePoints(text: String): Int = text.codePointCount(0, text.length)

    /** The first `head` code points, plus " … " and the last `tail` when the text is longer than both. */
    fun truncate(text: String, head: Int, tail: Int = 0): String {
        val length = codePoints(text)
        if (length <= head + tail) return text
        val headEnd = text.offsetByCodePoints(0, head)
        if (tail == 0) return text.substring(0, headEnd)
        return text.substring(0, headEnd) + " … " + text.substring(text.offsetByCodePoints(0, length - tail))
    }

    /** System cut to systemChars; user part = each earlier user turn cut to historyChars (oldest first), then
     *  the last one cut to userChars (+ userTailChars), one per line. */
    fun routerInput(system: String, user: String, t: Truncation, earlier: List<String> = emptyList()): Pair<String, String> =
        Pair(truncate(system, t.systemChars),
            (earlier.map { truncate(it, t.historyChars) } + truncate(user, t.userChars, t.userTailChars)).joinToString("\n"))

    fun requestRouterInput(request: Request, t: Truncation): Pair<String, String> =
        routerInput(request.system, request.user, t, request.earlierUserTurns(t.historyTurns))

    /** The whole user text read (earlier user turns, then the last), uncut: its length is a feature. */
    fun conversationUser(request: Request, t: Truncation): String =
        (request.earlierUserTurns(t.historyTurns) + request.user).joinToString("\n")

    /** One pass over the template: values are inserted literally, unknown placeholders stay. */
    fun fill(template: String, values: Map<String, String>): String =
        PLACEHOLDER.replace(template) { m -> values[m.groupValues[1]] ?: m.value }

    fun routerPrompt(template: String, system: String, user: String, t: Truncation, earlier: List<String> = emptyList()): String {
        val (s, u) = routerInput(system, user, t, earlier)
        return fill(template, mapOf("system" to s, "user" to u))
    }

    fun ratingPrompt(template: String, question: String, answer: String): String =
        fill(template, mapOf("question" to question, "answer" to answer))
}
