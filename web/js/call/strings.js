// @ts-check
// The call view's strings, loaded with it (the first screen carries only the call button's).
import { lang } from '../i18n.js';

export const STRINGS = {
  fr: {
    'call.title': 'Appel',
    'call.summary': '📞 Appel de {duration} avec {names}',
    'call.missed': '📞 Appel sans réponse',
    'call.unavailable': 'Appel impossible : {reason}',
    'call.starting': 'Préparation de l’appel…',
    'call.calling': 'Ça sonne…',
    'call.connecting': 'Connexion…',
    'call.connected': 'En communication',
    'call.incoming': '{name} vous appelle',
    'call.accept': 'Décrocher',
    'call.decline': 'Refuser',
    'call.declined': '{name} a refusé l’appel',
    'call.no_answer': 'Pas de réponse',
    'call.answered_elsewhere': 'Répondu sur un autre appareil',
    'call.declined_elsewhere': 'Refusé sur un autre appareil',
    'call.missed_from': 'Appel manqué de {name}',
    'call.mute': 'Couper le micro',
    'call.unmute': 'Rétablir le micro',
    'call.camera_off': 'Couper la caméra',
    'call.camera_on': 'Rétablir la caméra',
    'call.share': 'Partager l’écran',
    'call.share_stop': 'Arrêter le partage',
    'call.share_refused': 'Partage d’écran refusé ou annulé.',
    'call.leave': 'Raccrocher',
    'call.ended': 'Appel terminé',
    'call.media_refused': 'La caméra ou le micro sont refusés ou absents : autorisez-les pour ce site dans le navigateur, puis rappelez.',
    'error.calls_not_in_plan': 'les appels font partie de l’offre pro : demandez au propriétaire de votre organisation de passer à l’offre pro.',
    'error.not_a_call_channel': 'on appelle dans un groupe ou une conversation directe, pas dans une tribu.',
    'error.call_full': 'l’appel est complet (6 participants au plus).',
    'error.call_ended': 'cet appel est terminé.',
    'error.calls_busy': 'trois appels sont déjà ouverts dans cette conversation : rejoignez l’un d’eux.',
    'error.too_many_calls': 'trop d’appels dans cette conversation : rejoignez l’appel en cours ou réessayez plus tard.',
    'error.call_in_progress': 'votre appel précédent sonne encore : raccrochez-le d’abord.',
  },
  en: {
    'call.title': 'Call',
    'call.summary': '📞 Call of {duration} with {names}',
    'call.missed': '📞 Missed call',
    'call.unavailable': 'Cannot call: {reason}',
    'call.starting': 'Getting the call ready…',
    'call.calling': 'Ringing…',
    'call.connecting': 'Connecting…',
    'call.connected': 'In a call',
    'call.incoming': '{name} is calling you',
    'call.accept': 'Answer',
    'call.decline': 'Decline',
    'call.declined': '{name} declined the call',
    'call.no_answer': 'No answer',
    'call.answered_elsewhere': 'Answered on another device',
    'call.declined_elsewhere': 'Declined on another device',
    'call.missed_from': 'Missed call from {name}',
    'call.mute': 'Mute',
    'call.unmute': 'Unmute',
    'call.camera_off': 'Camera off',
    'call.camera_on': 'Camera on',
    'call.share': 'Share screen',
    'call.share_stop': 'Stop sharing',
    'call.share_refused': 'Screen sharing refused or cancelled.',
    'call.leave': 'Hang up',
    'call.ended': 'Call ended',
    'call.media_refused': 'The camera or microphone is blocked or missing: allow them for this site in the browser, then call again.',
    'error.calls_not_in_plan': 'calls are part of the pro plan: ask your organisation’s owner to move to pro.',
    'error.not_a_call_channel': 'calls happen in groups and direct conversations, not in tribes.',
    'error.call_full': 'the call is full (6 participants at most).',
    'error.call_ended': 'this call has ended.',
    'error.calls_busy': 'three calls are already open in this conversation: join one of them.',
    'error.too_many_calls': 'too many calls in this conversation: join the one going on or try again later.',
    'error.call_in_progress': 'your previous call is still ringing: hang it up first.',
  },
};

/**
 * ct('call.incoming', {name}): this view's string in the app's language (French by default).
 * @param {string} key
 * @param {Record<string, string>} [vars]
 */
export function ct(key, vars = {}) {
  const entry = STRINGS[lang()]?.[key] ?? STRINGS.fr[key] ?? key;
  return entry.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined ? `{${name}}` : String(vars[name])));
}

/** A refusal in words: the call codes here, the app's own for the rest. */
export function refusal(app, err) {
  const known = `error.${err?.code}`;
  return STRINGS[lang()]?.[known] ?? STRINGS.fr[known] ?? app.errorText(err);
}
