package dev.slmkit.routing

/**
 * A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by rendering
 * the model's own Jinja template around marker messages and checked against it): the text before the
 * first message, between each pair of consecutive roles, and after the last one (which includes the
 * generation prompt). No template engine runs on the phone.
 */
class ChatFormat(val start: Map<String, String>, val between: Map<String, String>, val end: Map<String, String>,
                 val stops: List<String>, val systemAsUserPrefix: Boolean) {
    fun render(messages: List<Message>): String {
        var list = messages
        if (systemAsUserPrefix && list.isNotEmpty() && list[0].role == "system") {
            val rest = list.drop(1)
            list = if (rest.isNotEmpty() && rest[0].role == "user")
                listOf(Message("user", list[0].content + "\n\n" + rest[0].content)) + rest.drop(1) else rest
        }
        val out = StringBuilder()
        var previous: String? = null
        for (m in list) {
            val joint = if (previous == null) start[m.role] else between["$previous>${m.role}"]
            out.append(joint ?: throw TierException("the chat format has no way to put ${m.role} after ${previous ?: "the start"}"))
            out.append(m.content)
            previous = m.role
        }
        return out.append(if (previous == null) "" else end[previous] ?: "").toString()
    }

    companion object {
        fun parse(text: String): ChatFormat = from(Json.parse(text))

        fun from(json: Any?): ChatFormat {
            val o = json.obj("chat_format.json")
            fun strings(key: String) = o[key].obj(key).mapValues { it.value.str() }
            return ChatFormat(strings("start"), strings("between"), strings("end"), o["stops"].list("stops").map { it.str() },
                o["system_as_user_prefix"] == true)
        }
    }
}
