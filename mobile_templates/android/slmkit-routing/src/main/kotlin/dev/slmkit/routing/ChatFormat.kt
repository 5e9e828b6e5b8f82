package dev.slmkit.routing

import java.util.Calendar

/**
 * A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by rendering
 * the model's own Jinja template around marker messages and checked against it): the text before the
 * first message, between each pair of consecutive roles, and after the last one (which includes the
 * generation prompt). No template engine runs on the phone. A date the template reads from the clock
 * is a slot `⟦now:FORMAT⟧` in those strings, filled here at render time (see [DateSlots]).
 */
class ChatFormat(val start: Map<String, String>, val between: Map<String, String>, val end: Map<String, String>,
                 val stops: List<String>, val systemAsUserPrefix: Boolean) {
    fun render(messages: List<Message>, now: ClockTime = ClockTime.now()): String {
        var list = messages
        if (systemAsUserPrefix && list.isNotEmpty() && list[0].role == "system") {
            val rest = list.drop(1)
            list = if (rest.isNotEmpty() && rest[0].role == "user")
                listOf(Message("user", list[0].content + "\n\n" + rest[0].content)) + rest.drop(1)
            else listOf(Message("user", list[0].content)) + rest
        }
        val out = StringBuilder()
        var previous: String? = null
        for (m in list) {
            val joint = if (previous == null) start[m.role] else between["$previous>${m.role}"]
            out.append(DateSlots.fill(joint ?: throw TierException("the chat format has no way to put ${m.role} after ${previous ?: "the start"}"), now))
            out.append(m.content)
            previous = m.role
        }
        if (previous != null) out.append(DateSlots.fill(end[previous] ?: "", now))
        return out.toString()
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

/** Local wall-clock time, the fields a chat template's date reads. */
data class ClockTime(val year: Int, val month: Int, val day: Int, val hour: Int = 0, val minute: Int = 0, val second: Int = 0) {
    companion object {
        fun now(): ClockTime {
            val c = Calendar.getInstance()
            return ClockTime(c.get(Calendar.YEAR), c.get(Calendar.MONTH) + 1, c.get(Calendar.DAY_OF_MONTH),
                c.get(Calendar.HOUR_OF_DAY), c.get(Calendar.MINUTE), c.get(Calendar.SECOND))
        }
    }
}

/** `⟦now:FORMAT⟧` slots filled with C-locale strftime (the directives `slmkit package` allows: d m Y y b B a A H M S j %). */
object DateSlots {
    private val slot = Regex("\u27e6now:([^\u27e7]*)\u27e7")
    private val months = listOf("January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December")
    private val weekdays = listOf("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    private val monthStart = intArrayOf(0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)

    fun fill(text: String, now: ClockTime): String =
        if (text.indexOf('\u27e6') < 0) text else slot.replace(text) { strftime(it.groupValues[1], now) }

    private fun leap(year: Int) = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0

    fun dayOfYear(t: ClockTime): Int = monthStart[t.month - 1] + t.day + if (t.month > 2 && leap(t.year)) 1 else 0

    /** 0 = Monday, as Python's weekday(). */
    fun weekday(t: ClockTime): Int {
        val y = t.year - 1
        val days = y * 365 + y / 4 - y / 100 + y / 400 + dayOfYear(t)  // 1 January of year 1 was a Monday
        return (days - 1) % 7
    }

    private fun pad(value: Int, width: Int): String = value.toString().padStart(width, '0')

    fun strftime(format: String, t: ClockTime): String {
        val out = StringBuilder()
        var i = 0
        while (i < format.length) {
            val c = format[i]
            if (c != '%' || i + 1 >= format.length) {
                out.append(c)
                i += 1
                continue
            }
            out.append(when (val d = format[i + 1]) {
                'd' -> pad(t.day, 2)
                'm' -> pad(t.month, 2)
                'Y' -> t.year.toString()
                'y' -> pad(t.year % 100, 2)
                'B' -> months[t.month - 1]
                'b' -> months[t.month - 1].substring(0, 3)
                'A' -> weekdays[weekday(t)]
                'a' -> weekdays[weekday(t)].substring(0, 3)
                'H' -> pad(t.hour, 2)
                'M' -> pad(t.minute, 2)
                'S' -> pad(t.second, 2)
                'j' -> pad(dayOfYear(t), 3)
                '%' -> "%"
                else -> "%$d"
            })
            i += 2
        }
        return out.toString()
    }
}
