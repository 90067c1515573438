"""Every sentence the Telegram bot and the camera say, in English and Spanish.

`text(lang, key, **values)` returns the sentence for `key` in `lang` ("en" or "es") with
`values` filled in. Replies are sent as plain text (no parse mode), so names and reasons
that contain markup are shown literally.
"""
from __future__ import annotations

EN = {
    "help_hr": (
        "I recognise the faces of enrolled people.\n\n"
        "Send a photo (or an image as a file) and I name every face in it.\n"
        "/enroll NAME - enroll a person: as the caption of a photo, as a reply to a photo, "
        "or send the photo right after\n"
        "/list - enrolled people and their samples\n"
        "/delete NAME - delete a person and all their samples\n"
        "/samples NAME - a person's samples (date, who added each, consent), to delete one\n"
        "/export NAME - everything stored about a person, as a JSON file (a data-subject request)\n"
        "/threshold [VALUE] - show the decision rule, or set a plain distance threshold\n"
        "/audit [N] - the last N enrollments and identifications\n"
        "/allow ID [hr] - let a user id (or a group) identify, or make them HR; /revoke ID takes it back\n"
        "/users - who may use the bot\n"
        "/attendance [YYYY-MM-DD] - who the cameras saw that day\n"
        "/cancel - forget a pending /enroll\n"
        "/whoami - your user id and this chat's id"
    ),
    "help_user": (
        "I recognise the faces of enrolled people.\n\n"
        "Send a photo (or an image as a file) and I name every face in it.\n"
        "/whoami - your user id and this chat's id"
    ),
    "refused": (
        "Sorry, you are not allowed to use this bot. "
        "Send /whoami and give the ids it shows to your administrator."
    ),
    "whoami": "Your user id: {user_id}\nThis chat's id: {chat_id}",
    "only_hr": "Sorry, only HR may do that.",
    "unknown_command": "I do not know that command. Send /help to see what I can do.",
    "text_hint": "Send me a photo and I will name the faces in it. /help lists the commands.",
    "unsupported": "I can only read photos and images (JPEG, PNG, WebP or BMP), not this kind of message.",
    "not_image": "This file is not an image. Send a photo, or a JPEG, PNG, WebP or BMP file.",
    "too_big": "This file is too big (the limit is 20 MB). Send a smaller photo.",
    "image_error": "I could not use this image: {reason}.",
    "phone_format": ("This is a {kind} file (an iPhone's photo format), which I cannot read. Please send it as a "
                     "photo rather than as a file: Telegram then sends me a JPEG."),
    "download_failed": "I could not download this file from Telegram. Please send it again.",
    "busy": "The gallery is busy right now. Please try again in a moment.",
    "error": "Something went wrong while handling your message. Please try again.",
    "enroll_usage": (
        "Usage: /enroll NAME - as the caption of a photo, as a reply to a photo, "
        "or send the photo right after the command."
    ),
    "enroll_send_photo": "Now send one photo of {name} (exactly one face).",
    "enroll_cancelled": "The pending enrollment was cancelled.",
    "nothing_pending": "There is nothing to cancel.",
    "invalid_name": "That name cannot be used: {reason}.",
    "enrolled": "Enrolled {name}: {samples} sample(s) now.",
    "no_face": "I found no face in this photo.",
    "face_too_small": ("The face is only {pixels} px wide: too small to be recognised again. Please send a closer "
                       "photo, with the face at least {minimum} px wide."),
    "face_cut": ("The photo's edge cuts this face (only {visible:.0%} of it is in the photo): it would be hard to "
                 "recognise again. Please send a photo that shows the whole face."),
    "several_faces": "I found {count} faces; an enrollment photo must show exactly one face.",
    "too_many_faces": "There are too many faces in this photo: {reason}.",
    "conflict": (
        "This face already matches {other} (distance {distance:.3f}). "
        "Enroll it as {name} anyway?"
    ),
    "button_cancel": "Cancel",
    "button_delete": "Delete",
    "cancelled": "Cancelled. Nothing was changed.",
    "expired": "This request has expired. Please start again.",
    "identified": "{count} face(s):",
    "face_known": "{index}. {name} (distance {distance:.3f})",
    "face_unknown": "{index}. unknown",
    "no_faces_found": "I found no face in this photo.",
    "nobody_enrolled": "Nobody is enrolled yet, so every face is unknown: HR enrolls people with /enroll NAME and a photo.",
    "list_empty": "No one is enrolled yet.",
    "list_header": "{count} person(s) enrolled:",
    "list_line": "{name}: {samples} sample(s)",
    "delete_usage": "Usage: /delete NAME",
    "delete_confirm": "Delete {name} and all {samples} sample(s)? This cannot be undone.",
    "deleted": "Deleted {name}: {samples} sample(s) removed.",
    "unknown_person": "Nobody called {name} is enrolled.",
    "threshold_show": "Decision ({source}): {rule}. Smaller is stricter.",
    "threshold_saved": "saved",
    "threshold_default": "default",
    "threshold_set": "The distance threshold is now {value:.3f}.",
    "threshold_invalid": "That is not a valid threshold: {reason}.",
    "audit_usage": "Usage: /audit [N] with N between 1 and 100.",
    "audit_empty": "The audit log is empty.",
}

ES = {
    "help_hr": (
        "Reconozco las caras de las personas registradas.\n\n"
        "Envíame una foto (o una imagen como archivo) y nombro cada cara.\n"
        "/enroll NOMBRE - registrar a una persona: como pie de una foto, respondiendo a una foto "
        "o enviando la foto justo después\n"
        "/list - personas registradas y sus muestras\n"
        "/delete NOMBRE - borrar a una persona y todas sus muestras\n"
        "/samples NOMBRE - las muestras de una persona (fecha, quién la añadió, consentimiento), para borrar una\n"
        "/export NOMBRE - todo lo guardado sobre una persona, en un archivo JSON (derecho de acceso)\n"
        "/threshold [VALOR] - ver la regla de decisión, o fijar un umbral de distancia\n"
        "/audit [N] - los últimos N registros e identificaciones\n"
        "/allow ID [hr] - dejar que un usuario (o un grupo) identifique, o hacerlo RR. HH.; /revoke ID lo quita\n"
        "/users - quién puede usar el bot\n"
        "/attendance [AAAA-MM-DD] - a quién vieron las cámaras ese día\n"
        "/cancel - olvidar un /enroll pendiente\n"
        "/whoami - tu id de usuario y el id de este chat"
    ),
    "help_user": (
        "Reconozco las caras de las personas registradas.\n\n"
        "Envíame una foto (o una imagen como archivo) y nombro cada cara.\n"
        "/whoami - tu id de usuario y el id de este chat"
    ),
    "refused": (
        "Lo siento, no tienes permiso para usar este bot. "
        "Envía /whoami y pasa los ids que muestra a tu administrador."
    ),
    "whoami": "Tu id de usuario: {user_id}\nId de este chat: {chat_id}",
    "only_hr": "Lo siento, solo RR. HH. puede hacer eso.",
    "unknown_command": "No conozco ese comando. Envía /help para ver lo que puedo hacer.",
    "text_hint": "Envíame una foto y nombraré las caras. /help muestra los comandos.",
    "unsupported": "Solo puedo leer fotos e imágenes (JPEG, PNG, WebP o BMP), no este tipo de mensaje.",
    "not_image": "Este archivo no es una imagen. Envía una foto o un archivo JPEG, PNG, WebP o BMP.",
    "too_big": "Este archivo es demasiado grande (el límite es 20 MB). Envía una foto más pequeña.",
    "image_error": "No pude usar esta imagen: {reason}.",
    "phone_format": ("Este es un archivo {kind} (el formato de foto del iPhone), que no puedo leer. Envíalo como "
                     "foto y no como archivo: Telegram me manda entonces un JPEG."),
    "download_failed": "No pude descargar este archivo de Telegram. Envíalo de nuevo, por favor.",
    "busy": "La galería está ocupada. Inténtalo de nuevo en un momento.",
    "error": "Algo salió mal al procesar tu mensaje. Inténtalo de nuevo.",
    "enroll_usage": (
        "Uso: /enroll NOMBRE - como pie de una foto, respondiendo a una foto "
        "o enviando la foto justo después del comando."
    ),
    "enroll_send_photo": "Ahora envía una foto de {name} (exactamente una cara).",
    "enroll_cancelled": "Se canceló el registro pendiente.",
    "nothing_pending": "No hay nada que cancelar.",
    "invalid_name": "Ese nombre no se puede usar: {reason}.",
    "enrolled": "Registrado {name}: ahora tiene {samples} muestra(s).",
    "no_face": "No encontré ninguna cara en esta foto.",
    "face_too_small": ("La cara mide solo {pixels} px de ancho: demasiado pequeña para reconocerla después. Envía "
                       "una foto más cercana, con la cara de al menos {minimum} px de ancho."),
    "face_cut": ("El borde de la foto corta esta cara (solo el {visible:.0%} está en la foto): sería difícil "
                 "reconocerla después. Envía una foto en la que se vea la cara entera."),
    "several_faces": "Encontré {count} caras; una foto de registro debe mostrar exactamente una.",
    "too_many_faces": "Hay demasiadas caras en esta foto: {reason}.",
    "conflict": (
        "Esta cara ya coincide con {other} (distancia {distance:.3f}). "
        "¿Registrarla como {name} de todos modos?"
    ),
    "button_cancel": "Cancelar",
    "button_delete": "Borrar",
    "cancelled": "Cancelado. No se cambió nada.",
    "expired": "Esta solicitud ha caducado. Empieza de nuevo, por favor.",
    "identified": "{count} cara(s):",
    "face_known": "{index}. {name} (distancia {distance:.3f})",
    "face_unknown": "{index}. desconocido",
    "no_faces_found": "No encontré ninguna cara en esta foto.",
    "nobody_enrolled": ("Todavía no hay nadie registrado, así que toda cara es desconocida: RR. HH. registra a las "
                        "personas con /enroll NOMBRE y una foto."),
    "list_empty": "Todavía no hay nadie registrado.",
    "list_header": "{count} persona(s) registrada(s):",
    "list_line": "{name}: {samples} muestra(s)",
    "delete_usage": "Uso: /delete NOMBRE",
    "delete_confirm": "¿Borrar a {name} y sus {samples} muestra(s)? No se puede deshacer.",
    "deleted": "Borrado {name}: {samples} muestra(s) eliminada(s).",
    "unknown_person": "No hay nadie registrado con el nombre {name}.",
    "threshold_show": "Decisión ({source}): {rule}. Más pequeño es más estricto.",
    "threshold_saved": "guardado",
    "threshold_default": "por defecto",
    "threshold_set": "El umbral de distancia ahora es {value:.3f}.",
    "threshold_invalid": "Ese umbral no es válido: {reason}.",
    "audit_usage": "Uso: /audit [N] con N entre 1 y 100.",
    "audit_empty": "El registro de auditoría está vacío.",
}

# What the camera posts to the alert chat, and the short label drawn on unknown faces.
EN.update({
    "unknown_label": "unknown",
    "camera_known": "Welcome {name} — {camera}, {time}",
    "camera_unknown": "Unknown person — {camera}, {time}",
    # FACEBOT_ALERT_SNAPSHOTS=known: why an alert has no photo.
    "snapshot_withheld": "No photo: {unknown} of the {total} faces in view not recognised.",
})
ES.update({
    "unknown_label": "desconocido",
    "camera_known": "Bienvenido/a {name} — {camera}, {time}",
    "camera_unknown": "Usuario desconocido — {camera}, {time}",
    "snapshot_withheld": "Sin foto: {unknown} de las {total} caras a la vista sin reconocer.",
})

# Access from Telegram, menus, attendance, naming unknown faces, camera outages.
EN.update({
    # Command menu descriptions (setMyCommands): at most 256 characters, no leading slash.
    "cmd_help": "what I can do for you",
    "cmd_whoami": "your user id and this chat's id",
    "cmd_enroll": "enroll a person: /enroll NAME with a photo",
    "cmd_list": "enrolled people and their samples",
    "cmd_delete": "delete a person and all their samples",
    "cmd_threshold": "show or set the decision rule",
    "cmd_audit": "the newest audit entries",
    "cmd_cancel": "forget a pending /enroll or name",
    "cmd_allow": "let someone use the bot: /allow ID [hr]",
    "cmd_revoke": "take access back: /revoke ID",
    "cmd_users": "who may use the bot",
    "cmd_attendance": "who the cameras saw: /attendance [YYYY-MM-DD]",
    "role_hr": "HR",
    "role_user": "user",
    "allow_usage": "Usage: /allow ID [hr] - ID is a user id (or a group's chat id) from /whoami.",
    "allowed": "{id} is now {role}.",
    "allowed_but_env": "{id} is now {role} from Telegram, and stays {fixed} through {variable}.",
    "allow_refused": "That cannot be done: {reason}.",
    "revoke_usage": "Usage: /revoke ID",
    "revoked": "{id} may no longer use the bot.",
    "revoked_but_env": "Revoked what was given from Telegram; {id} stays {role} through {variable}, which cannot be revoked from Telegram (change it there and restart the bot).",
    "revoke_fixed": "{id} is {role} through {variable}: that cannot be revoked from Telegram. Remove it there and restart the bot.",
    "revoke_not_listed": "{id} is not on the list.",
    "users_list": "HR: {hr}\nUsers and chats: {users}\n(env: from FACEBOT_HR_IDS / FACEBOT_USER_IDS; cannot be revoked from Telegram)",
    "users_none": "nobody",
    "attendance_usage": "Usage: /attendance [YYYY-MM-DD] (default today).",
    "attendance_header": "Seen on {date} ({count}):",
    "attendance_nobody": "Nobody was seen on {date}.",
    "summary_header": "Attendance on {date}, all cameras ({count}):",
    "button_enroll_face": "Enroll face #{index}…",
    "button_enroll_this": "Enroll this face…",
    "button_add_to_this": "This is {name}: add a sample…",
    "button_add_to_face": "#{index} is {name}: add a sample…",
    "button_not_person": "#{index} is not {name}",
    "ask_face_name": "Who is face #{index}? Reply with the name (or /cancel).",
    "ask_camera_face_name": "Who is this face ({camera}, {time})? Reply with the name (or /cancel).",
    "face_expired": "This face is no longer kept (faces are kept 24 hours). Send a photo and use /enroll.",
    "face_conflict": "This face already matches {other} (distance {distance:.3f}); it was not enrolled.",
    "report_recorded": "Thank you: your report that face #{index} is not {name} was recorded.",
    "camera_offline": "Camera {camera} ({source}) is offline since {time}; trying to reconnect.",
    "camera_online": "Camera {camera} is back online at {time} (offline for {duration}).",
})
ES.update({
    "cmd_help": "lo que puedo hacer por ti",
    "cmd_whoami": "tu id de usuario y el id de este chat",
    "cmd_enroll": "registrar a una persona: /enroll NOMBRE con una foto",
    "cmd_list": "personas registradas y sus muestras",
    "cmd_delete": "borrar a una persona y todas sus muestras",
    "cmd_threshold": "ver o fijar la regla de decisión",
    "cmd_audit": "las últimas entradas de auditoría",
    "cmd_cancel": "olvidar un /enroll o un nombre pendiente",
    "cmd_allow": "dar acceso al bot: /allow ID [hr]",
    "cmd_revoke": "quitar el acceso: /revoke ID",
    "cmd_users": "quién puede usar el bot",
    "cmd_attendance": "a quién vieron las cámaras: /attendance [AAAA-MM-DD]",
    "role_hr": "RR. HH.",
    "role_user": "usuario",
    "allow_usage": "Uso: /allow ID [hr] - ID es un id de usuario (o el id de un grupo) de /whoami.",
    "allowed": "{id} ahora es {role}.",
    "allowed_but_env": "{id} ahora es {role} desde Telegram, y sigue siendo {fixed} por {variable}.",
    "allow_refused": "No se puede hacer: {reason}.",
    "revoke_usage": "Uso: /revoke ID",
    "revoked": "{id} ya no puede usar el bot.",
    "revoked_but_env": "Se quitó lo dado desde Telegram; {id} sigue siendo {role} por {variable}, que no se puede revocar desde Telegram (cámbialo allí y reinicia el bot).",
    "revoke_fixed": "{id} es {role} por {variable}: eso no se puede revocar desde Telegram. Quítalo allí y reinicia el bot.",
    "revoke_not_listed": "{id} no está en la lista.",
    "users_list": "RR. HH.: {hr}\nUsuarios y chats: {users}\n(env: de FACEBOT_HR_IDS / FACEBOT_USER_IDS; no se puede revocar desde Telegram)",
    "users_none": "nadie",
    "attendance_usage": "Uso: /attendance [AAAA-MM-DD] (por defecto hoy).",
    "attendance_header": "Vistos el {date} ({count}):",
    "attendance_nobody": "No se vio a nadie el {date}.",
    "summary_header": "Asistencia del {date}, todas las cámaras ({count}):",
    "button_enroll_face": "Registrar la cara #{index}…",
    "button_enroll_this": "Registrar esta cara…",
    "button_add_to_this": "Es {name}: añadir una muestra…",
    "button_add_to_face": "La #{index} es {name}: añadir una muestra…",
    "button_not_person": "#{index} no es {name}",
    "ask_face_name": "¿Quién es la cara #{index}? Responde con el nombre (o /cancel).",
    "ask_camera_face_name": "¿Quién es esta cara ({camera}, {time})? Responde con el nombre (o /cancel).",
    "face_expired": "Esta cara ya no se guarda (se guardan 24 horas). Envía una foto y usa /enroll.",
    "face_conflict": "Esta cara ya coincide con {other} (distancia {distance:.3f}); no se registró.",
    "report_recorded": "Gracias: se registró tu aviso de que la cara #{index} no es {name}.",
    "camera_offline": "La cámara {camera} ({source}) está desconectada desde las {time}; intentando reconectar.",
    "camera_online": "La cámara {camera} vuelve a funcionar a las {time} (desconectada {duration}).",
})

# Consent before a bot enrollment (GDPR Art. 9), and one sample at a time (/samples).
EN.update({
    "consent_ask": (
        "Did {name} consent to having their face stored and recognised? Press Consent given only if "
        "you hold their consent (a signed form, say); I record that you confirmed it."
    ),
    "small_face_note": ("The face is only {pixels} px wide: a sample from it will recognise {name} less often than "
                        "one from a closer photo (a face {good} px wide or more). You may cancel and send a closer one."),
    "button_consent": "Consent given",
    "button_consent_anyway": "Consent given, enroll anyway",
    "pick_face": "I found {count} faces, numbered biggest first. Which one is {name}?",
    "button_face_number": "Face {index}",
    "cmd_samples": "a person's samples, to delete one: /samples NAME",
    "samples_usage": "Usage: /samples NAME",
    "samples_header": "{name}: {count} sample(s), oldest first:",
    "samples_line": "{index}. {date}, added by {by}; consent: {consent}",
    "samples_no_consent": "none recorded",
    "samples_more": "(buttons for the first {count} samples)",
    "button_delete_sample": "Delete sample {index} ({date})",
    "sample_delete_confirm": "Delete sample {index} of {name} ({date}, added by {by})? This cannot be undone.",
    "sample_deleted": "Deleted sample {index} of {name}: {left} sample(s) left.",
    "sample_deleted_last": (
        "Deleted sample {index} of {name}: no samples left, so they are no longer recognised. "
        "/delete {name} erases them completely."
    ),
    "sample_gone": "That sample is no longer there. Send /samples {name} again.",
    "cmd_export": "everything stored about a person, as JSON: /export NAME",
    "export_usage": "Usage: /export NAME",
    "export_caption": "Everything facebot stores about {name}: {samples} sample(s) and {entries} audit entries (no photos).",
    # the decision rule in words (recognition/decision.py), for /threshold
    "rule_threshold": "threshold {low:.3f}",
    "rule_close": "known at distance <= {low:.3f}",
    "rule_band": ("known at distance <= {low:.3f}, or <= {high:.3f} when the distance is at most {ratio:.3f} "
                  "times the next person's"),
    "rule_background": "; never beyond {cohort:.3f} x the distance to the nearest background face",
    "rule_small_faces": "; up to {small_high:.3f} for faces under {small_face:.0f} px",
})
ES.update({
    "consent_ask": (
        "¿Dio {name} su consentimiento para guardar y reconocer su cara? Pulsa Consentimiento dado solo si "
        "tienes su consentimiento (un formulario firmado, por ejemplo); quedará registrado que lo confirmaste."
    ),
    "small_face_note": ("La cara mide solo {pixels} px de ancho: una muestra de ella reconocerá a {name} menos a menudo "
                        "que una de una foto más cercana (una cara de {good} px o más). Puedes cancelar y enviar otra."),
    "button_consent": "Consentimiento dado",
    "button_consent_anyway": "Consentimiento dado, registrar igualmente",
    "pick_face": "Encontré {count} caras, numeradas de mayor a menor. ¿Cuál es {name}?",
    "button_face_number": "Cara {index}",
    "cmd_samples": "las muestras de una persona, para borrar una: /samples NOMBRE",
    "samples_usage": "Uso: /samples NOMBRE",
    "samples_header": "{name}: {count} muestra(s), de la más antigua a la más reciente:",
    "samples_line": "{index}. {date}, añadida por {by}; consentimiento: {consent}",
    "samples_no_consent": "no registrado",
    "samples_more": "(botones para las {count} primeras muestras)",
    "button_delete_sample": "Borrar la muestra {index} ({date})",
    "sample_delete_confirm": "¿Borrar la muestra {index} de {name} ({date}, añadida por {by})? No se puede deshacer.",
    "sample_deleted": "Borrada la muestra {index} de {name}: quedan {left} muestra(s).",
    "sample_deleted_last": (
        "Borrada la muestra {index} de {name}: no le quedan muestras, así que ya no se reconoce. "
        "/delete {name} lo borra por completo."
    ),
    "sample_gone": "Esa muestra ya no existe. Envía /samples {name} de nuevo.",
    "cmd_export": "todo lo guardado sobre una persona, en JSON: /export NOMBRE",
    "export_usage": "Uso: /export NOMBRE",
    "export_caption": "Todo lo que facebot guarda sobre {name}: {samples} muestra(s) y {entries} entradas de auditoría (ninguna foto).",
    "rule_threshold": "umbral {low:.3f}",
    "rule_close": "conocido a distancia <= {low:.3f}",
    "rule_band": ("conocido a distancia <= {low:.3f}, o <= {high:.3f} cuando la distancia es como mucho {ratio:.3f} "
                  "veces la de la siguiente persona"),
    "rule_background": "; nunca más allá de {cohort:.3f} x la distancia a la cara de fondo más cercana",
    "rule_small_faces": "; hasta {small_high:.3f} para caras de menos de {small_face:.0f} px",
})

TEXTS: dict[str, dict[str, str]] = {"en": EN, "es": ES}


def text(lang: str, key: str, **values) -> str:
    """The sentence `key` in `lang` (falling back to English) with `values` filled in."""
    template = TEXTS.get(lang, EN).get(key) or EN[key]
    return template.format(**values) if values else template
