// The map's message catalogue: English and Ukrainian. Choose with ?lang=uk|en (default: the browser's language).
// Keys with {name} placeholders are filled by t(key, {name: value}). Place names stay as in GeoNames (English).
"use strict";
window.SKYTRACE_MESSAGES = {
  en: {
    active_alerts: "Active alerts", none: "none", timeline: "Timeline", live_button: "Live", live_label: "live",
    warning: "WARNING", imminent: "IMMINENT", since: "since {time} ({dur})", eta: "ETA {eta}", now: "now",
    in: "in {dur}", tracks_n: "{n} tracks", track_1: "1 track", tracks_count: "{n} tracks",
    coasting_n: " ({n} coasting)", feed_live: "LIVE", feed_none: "NO CONNECTION", feed_stalled: "FEED STALLED",
    feed_ended: "REPLAY ENDED", feed_history: "HISTORY", sound_on: "sound on", sound_off: "sound off",
    lg_drone: "drone (arrow = heading)", lg_coast: "coasting", lg_fan: "5 min fan", lg_warning: "warning",
    lg_imminent: "imminent", lg_places: "places", lg_rivers: "rivers", lg_sensors: "sensors", lg_labels: "drone labels",
    area: "{town} area, {obl}", cell: "{obl} (cell {id})", zones_n: "{obl}: {n} zones", zone_1: "{obl}: 1 zone",
    imminent_n: ", {n} imminent", prob: "probability a drone enters: {p}%", first_arrival: "first arrival {eta}",
    certainty: "certainty: {c}", tracks_list: "tracks: {list}", why: "why: {r}", no_alert: "no active alert",
    link: "link {age}", data: "data {age}", step: "step {dt}", ago: "{dur} ago", u_s: "s", u_min: "min", u_h: "h",
    on_map: " ({n} on map)", cls_manned: "aircraft {id} (ADS-B)", cls_coop: "Remote ID {id}",
    cls_drone: "non-cooperative: possible drone", lg_manned: "aircraft (ADS-B)", lg_coop: "Remote ID drone",
    lg_coverage: "coverage", lg_cov_acoustic: "acoustic range", lg_cov_radar: "radar",
  },
  uk: {
    active_alerts: "Активні тривоги", none: "немає", timeline: "Хронологія", live_button: "Наживо",
    live_label: "наживо", warning: "ПОПЕРЕДЖЕННЯ", imminent: "НЕГАЙНО", since: "з {time} ({dur})",
    eta: "прибуття {eta}", now: "зараз", in: "за {dur}", tracks_n: "треків: {n}", track_1: "1 трек",
    tracks_count: "треків: {n}", coasting_n: " (без вимірювань: {n})", feed_live: "НАЖИВО",
    feed_none: "НЕМАЄ ЗВ'ЯЗКУ", feed_stalled: "ДАНІ НЕ НАДХОДЯТЬ", feed_ended: "ПОВТОР ЗАВЕРШЕНО",
    feed_history: "ІСТОРІЯ", sound_on: "звук увімк.", sound_off: "звук вимк.", lg_drone: "дрон (стрілка = курс)",
    lg_coast: "без вимірювань", lg_fan: "віяло 5 хв", lg_warning: "попередження", lg_imminent: "негайна загроза",
    lg_places: "населені пункти", lg_rivers: "річки", lg_sensors: "сенсори", lg_labels: "підписи дронів", area: "р-н {town}, {obl}",
    cell: "{obl} (клітинка {id})", zones_n: "{obl}: зон {n}", zone_1: "{obl}: 1 зона", imminent_n: ", негайно {n}",
    prob: "імовірність входу дрона: {p}%", first_arrival: "перше прибуття {eta}", certainty: "достовірність: {c}",
    tracks_list: "треки: {list}", why: "чому: {r}", no_alert: "немає активної тривоги", link: "зв'язок {age}",
    data: "дані {age}", step: "крок {dt}", ago: "{dur} тому", u_s: "с", u_min: "хв", u_h: "год",
    on_map: " (на мапі: {n})", cls_manned: "літак {id} (ADS-B)", cls_coop: "Remote ID {id}",
    cls_drone: "некооперативна ціль: можливий дрон", lg_manned: "літак (ADS-B)", lg_coop: "дрон з Remote ID",
    lg_coverage: "покриття", lg_cov_acoustic: "акустичне", lg_cov_radar: "радар",
  },
};
