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
        "/threshold [VALUE] - show the decision rule, or set a plain distance threshold\n"
        "/audit [N] - the last N enrollments and identifications\n"
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
    "several_faces": "I found {count} faces; an enrollment photo must show exactly one face.",
    "too_many_faces": "There are too many faces in this photo: {reason}.",
    "conflict": (
        "This face already matches {other} (distance {distance:.3f}). "
        "Enroll it as {name} anyway?"
    ),
    "button_enroll_anyway": "Enroll anyway",
    "button_cancel": "Cancel",
    "button_delete": "Delete",
    "cancelled": "Cancelled. Nothing was changed.",
    "expired": "This request has expired. Please start again.",
    "identified": "{count} face(s):",
    "face_known": "{index}. {name} (distance {distance:.3f})",
    "face_unknown": "{index}. unknown",
    "no_faces_found": "I found no face in this photo.",
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
        "/threshold [VALOR] - ver la regla de decisión, o fijar un umbral de distancia\n"
        "/audit [N] - los últimos N registros e identificaciones\n"
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
    "several_faces": "Encontré {count} caras; una foto de registro debe mostrar exactamente una.",
    "too_many_faces": "Hay demasiadas caras en esta foto: {reason}.",
    "conflict": (
        "Esta cara ya coincide con {other} (distancia {distance:.3f}). "
        "¿Registrarla como {name} de todos modos?"
    ),
    "button_enroll_anyway": "Registrar igualmente",
    "button_cancel": "Cancelar",
    "button_delete": "Borrar",
    "cancelled": "Cancelado. No se cambió nada.",
    "expired": "Esta solicitud ha caducado. Empieza de nuevo, por favor.",
    "identified": "{count} cara(s):",
    "face_known": "{index}. {name} (distancia {distance:.3f})",
    "face_unknown": "{index}. desconocido",
    "no_faces_found": "No encontré ninguna cara en esta foto.",
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
    "camera_summary": "Seen today on {camera}:",
    "camera_nobody": "Nobody was recognised today on {camera}.",
})
ES.update({
    "unknown_label": "desconocido",
    "camera_known": "Bienvenido/a {name} — {camera}, {time}",
    "camera_unknown": "Usuario desconocido — {camera}, {time}",
    "camera_summary": "Vistos hoy en {camera}:",
    "camera_nobody": "Hoy no se reconoció a nadie en {camera}.",
})

TEXTS: dict[str, dict[str, str]] = {"en": EN, "es": ES}


def text(lang: str, key: str, **values) -> str:
    """The sentence `key` in `lang` (falling back to English) with `values` filled in."""
    template = TEXTS.get(lang, EN).get(key) or EN[key]
    return template.format(**values) if values else template
