"""Weighted intent patterns over the folded text: what a passage asks the assistant to do, in several languages.

Each pattern names an intent (the reason code) and a weight: roughly how sure one match alone makes us that the
text is an attack. Patterns look for the shape of an attack (an imperative aimed at the assistant plus an object
such as its instructions, its prompt or its persona), not for the wording of known examples. Every repetition is
bounded or runs over disjoint classes, so each pattern matches in linear time.
"""

import re

from documents.screening.anchors import Prefilter

# Up to N words between two anchors: alternating non-word and word runs (disjoint classes: one way to match).
_GAP2 = r"(?:\W+\w+){0,2}?\W+"
_GAP4 = r"(?:\W+\w+){0,4}?\W+"
_GAP6 = r"(?:\W+\w+){0,6}?\W+"

_PRIOR = (
    r"(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|old|existing|past|system|"
    r"developer|given|current|default|all|any|every|your|these|those|everything)"
)
_BACK = r"(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|old|past|system|developer)"
_RULES = (
    r"(?:instructions?|instructs?|directions?|directives?|rules?|prompts?|guidelines?|guidance|commands?|orders?|"
    r"constraints?|restrictions?|programming|policies|policy|tasks?|context|conversation|"
    r"filters?|safeguards?|limitations?|training|information|documents?|assignments?)"
)
_DISMISS = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|overlook|bypass|override|overriding|abandon|"
    r"neglect|discard|dismiss|deviate from|set aside|put aside|throw out|throw away|pay no attention to|"
    r"do not follow|don'?t follow|stop following|no longer follow|stop obeying|never mind|nevermind)"
)
# Verbs that also have everyday objects (reset the settings, clear the cache): only with a word pointing back.
_DISMISS_WEAK = r"(?:skip|drop|erase|delete|clear|reset|cancel|suspend|nullify|void|remove|scrap|wipe)"
_REVEAL = (
    r"(?:reveal|show|print|output|repeat|display|disclose|tell|give|share|leak|dump|paste|list|write|spell|recite|"
    r"return|expose|provide|send|copy|echo|state|encode|format|reproduce|type|put)"
)
_SECRET_OBJECT = (
    r"(?:(?:your|the|this|its|my|our|all|these|those)\W+(?:\w+\W+){0,2}?(?:system|initial|original|hidden|secret|"
    r"internal|developer|confidential|pre-?|starting|underlying|full|exact|entire|complete|previous|prior|above)\W*"
    r"(?:\w+\W+){0,1}?(?:prompts?|instructions?|messages?|rules|configuration|config|directives?|guidelines|"
    r"context|text|programming)|"
    r"your\W+(?:\w+\W+){0,1}?(?:prompts?|instructions|rules|guidelines|directives|configuration|programming|"
    r"password|secret|api key|access code|passphrase|unique id|context window|initial|system)|"
    r"(?:the|your)\W+(?:\w+\W+){0,1}?(?:password|passphrase|access code|api keys?|secret key|unique id|"
    r"credentials|secret word|code word))"
)

# What an ordinary request about the form of an answer asks for: a language, a format, a part of a normal answer.
_ANSWER_SHAPE = (
    r"(?:greetings?|summary|summaries|overview|conclusion|introduction|intro|outline|tl;?dr|one-line|short|brief|"
    r"bullet|bullets|bulleted|list|numbered|table|headings?|title|sources|references|citations?|page numbers?|"
    r"examples?|definitions?|key points|takeaways|next steps|recommendations?|plain|simple|formal|informal|polite|"
    r"english|british|american|german|french|spanish|italian|portuguese|dutch|polish|japanese|chinese|korean|"
    r"markdown|json|csv|metric|imperial|thanks|thank you)"
)

# Up to five words that are not a preposition: "write a false headline", not "write an essay on false claims".
_NO_TOPIC_GAP = r"(?:(?!(?:about|on|of|regarding|concerning|over|über|zu|zum|zur|von|vom)\W)\w+\W+){0,5}?"

# (code, weight, pattern)
_PATTERNS: list[tuple[str, float, str]] = [
    # --- Instruction override (English)
    ("override", 0.92, rf"\b{_DISMISS}\W+(?:\w+\W+){{0,4}}?{_PRIOR}\W+(?:\w+\W+){{0,3}}?{_RULES}\b"),
    ("override", 0.8, rf"\b{_DISMISS_WEAK}\W+(?:\w+\W+){{0,3}}?{_BACK}\W+(?:\w+\W+){{0,2}}?{_RULES}\b"),
    ("override", 0.85, rf"\b{_DISMISS}\W+(?:about\W+)?(?:all|everything|anything)\b(?:\W+(?:you|i)\W+(?:\w+\W+){{0,3}}?"
                       r"(?:know|told|said|learned|were told|have been told|was told|been given))?"),
    ("override", 0.8, rf"\b{_DISMISS}\W+(?:the\W+)?(?:above|previous|prior|preceding|earlier)\b"),
    ("override", 0.75, r"\b(?:new|updated|real|actual|true|revised|additional|secret|hidden|important|priority|"
                       r"urgent|override|admin|system)\W+(?:\w+\W+){0,1}?(?:instructions?|task|directives?|orders?|"
                       r"commands?|rules)\W*(?::|follow|are|is|apply|take|(?:to|for)\W+(?:the\W+)?(?:\w+\W+)?(?:assistant|"
                       r"ai|model|bot|chatbot|llm|gpt|chatgpt)\b)"),
    # A numbered or labelled "next order" slipped into a conversation: "additional instruction - ...".
    ("override", 0.55, r"\b(?:additional|new|next|further|extra|final|real)\W+(?:instruction|statement|task|command|"
                       r"directive|order|request)\s*[-–—:]\s"),
    ("override", 0.7, r"\b(?:begin|start|initiate|commence)\w*\W+(?:\w+\W+)?re-?program(?:ming|med)?\b|"
                      r"\bre-?program(?:ming)?\W+(?:the\W+|your\W+)?(?:assistant|ai|model|bot|chatbot|yourself)\b"),
    ("override", 0.5, r"\b(?:you|which|that)\W+(?:\w+\W+)?(?:have|has|had|with|got)\W+(?:\w+\W+)?amnesia\b|"
                       r"\b(?:you|which|that)\W+(?:have|has|had)\W+(?:\w+\W+)?(?:forgot|forgotten)\W+(?:all|everything)\b"),
    # Answering around the retrieved passages: "from your own knowledge, not from the articles".
    ("override", 0.6, r"\b(?:by|from|with|use|using|on|based on|rely on|stick to)\W+(?:only\W+)?(?:your\W+)?own\W+(?:\w+\W+)?"
                      r"(?:knowledge|opinion|views?|beliefs?|data|training)\W+(?:\w+\W+){0,2}?(?:not|instead of|rather than|"
                      r"ignoring|never)\W+(?:\w+\W+){0,3}?(?:articles?|documents?|context|sources?|texts?|passages?|excerpts?|"
                      r"search results?)\b"),
    ("override", 0.5, r"\b(?:not|never|don'?t|do not|without)\W+(?:\w+\W+){0,2}?(?:rely on|relying on|using|use|based on|"
                      r"refer to|referring to|look at|consult)\W+(?:the\W+)?(?:provided\W+|given\W+|retrieved\W+|"
                      r"supplied\W+)(?:articles?|documents?|context|sources?|texts?|passages?)\b"),
    ("override", 0.55, r"\b(?:nicht|statt|anstatt|ohne)\W+(?:\w+\W+){0,2}?(?:aus|in|mit|von|nach)?\W*(?:den|dem|der|die)\W+"
                       r"(?:artikeln|artikel|dokumenten|texten|quellen|kontext)\b"),
    ("override", 0.25, r"\bnew (?:instructions|task|rules|directive)\b"),
    ("override", 0.35, r"\b(?:from now on|from this point(?: on| forward)?|henceforth|for the rest of (?:this|the) "
                       r"conversation|starting now|going forward)\b(?![,\s]+(?:please\s+)?(?:always\s+)?(?:answer|respond|reply|"
                       rf"write|speak|summari[sz]e)\s+(?:only\s+)?(?:in|using|with)\s+(?:\w+\s+)?{_ANSWER_SHAPE}\b)"),
    ("override", 0.45, r"\b(?:instead|rather)\W+(?:\w+\W+){0,2}?(?:say|print|output|write|respond|reply|answer|"
                       r"return|repeat|type)\b"),
    ("override", 0.7, r"\b(?:do not|don'?t|never)\W+(?:answer|respond to|reply to|address|follow|summari[sz]e|"
                      r"translate|evaluate|assess|look at|read|process)\W+(?:\w+\W+){0,4}?(?:but|instead|just|"
                      r"only|and)\W+(?:\w+\W+){0,2}?(?:say|print|output|write|respond|reply|answer|return|repeat)\b"),
    # "...? stop: write ..." -- a halt after the question, followed at once by an order for the answer.
    ("override", 0.65, r"\w\W*[.!?\n-]\s*(?:stop|halt|abort)\s*[:!-]\s*(?:now\s+)?(?:write|say|print|output|tell|"
                       r"repeat|respond|answer|declare|state)\b"),
    ("override", 0.5, r"(?:^|[.!?:\n-]\s*)(?:stop|wait|halt|pause|abort|attention|important|nevermind|never mind)"
                      r"\s*(?:[:!.]|everything|now|right there)"),
    ("override", 0.35, r"\b(?:now|next|then|after that|afterwards)\W+(?:\w+\W+){0,2}?(?:focus|concentrate)\W+on\W+"
                       r"(?:\w+\W+){0,2}?(?:new|next|other|real)\W+(?:task|job|assignment|question)"),
    ("override", 0.5, r"\b(?:that|this) (?:was|is|has been) (?:great|fantastic|excellent|good|well done|perfect|"
                      r"amazing|brilliant)\b\W+(?:\w+\W+){0,6}?(?:now|next|new|further|another|additional)\b"),
    ("override", 0.45, r"\b(?:well done|great job|good job|excellent|congratulations|perfect|very good|wonderful|"
                       r"fantastic)\W+(?:\w+\W+){0,4}?(?:now|next)\W+(?:\w+\W+){0,3}?(?:task|tasks|instructions?|"
                       r"question|job|follow|comes?)\b"),
    ("override", 0.55, r"\b(?:end|begin|start)\W+(?:of\W+)?(?:the\W+)?(?:user\W+|untrusted\W+|system\W+)?(?:session|"
                       r"input|document|context|prompt|instructions|ambiguity|conversation|text|data)\b\W*(?:%|=|-|#|"
                       r"\]|>|\*|\n)"),
    ("override", 0.45, r"(?:%%%|===|###|\*\*\*|---)\s*(?:end|begin|new|system|important|admin)\b(?![\w ]*-----)"),
    ("override", 0.4, r"\b(?:you are|you're) (?:no longer|not) (?:bound|restricted|limited|required|obliged|"
                      r"constrained|an? (?:ai|assistant|language model|chatbot)|chatgpt|gpt)\b"),
    ("override", 0.4, r"\b(?:keep|follow|obey|forget) (?:your |the )?(?:previous|prior|old|above) instructions\b.{0,80}"
                      r"\b(?:but|however|now|also)\b"),
    ("override", 0.55, r"\b(?:admin(?:istrator)?|developer|root|sudo|system|maintenance|debug(?:ging)?|test|god|"
                       r"emergency)\W+(?:mode|override|access|command|privileges?)\W+(?:\w+\W+){0,2}?"
                       r"(?:enabled|activated|granted|engaged|unlocked)\b"),
    ("override", 0.55, r"\b(?:admin(?:istrator)?|developer|root|sudo|supervisor|operator|security)\W+(?:override|command)\s*[:!-]"),
    ("override", 0.5, r"\b(?:grant|give) (?:me |yourself )?(?:temporary |full |unrestricted )?(?:admin(?:istrative)?|"
                      r"root|elevated|developer|superuser) (?:privileges|access|rights|permissions)\b"),
    ("override", 0.35, r"\bregardless of (?:any |all |the |your )?(?:previous|prior|above|other|earlier)?\W*"
                       r"(?:instructions|input|rules|what)"),
    ("override", 0.85, rf"\b{_BACK}\W+(?:\w+\W+){{0,2}}?{_RULES}\W+(?:\w+\W+){{0,2}}?(?:are|is|should be|must be|"
                       r"can be|have been|has been|will be|are to be|are now)\W+(?:\w+\W+)?(?:ignored|disregarded|"
                       r"forgotten|void|cancell?ed|revoked|obsolete|overridden|suspended|lifted|no longer valid)\b"),
    ("override", 0.8, rf"\b{_DISMISS}\W+(?:what|everything|anything|all that|whatever)\W+(?:\w+\W+){{0,2}}?(?:i|we|you)\W+"
                      r"(?:\w+\W+)?(?:said|told|wrote|asked|typed|mentioned|were told|have been told)\b"),
    ("override", 0.55, r"\b(?:very good|well done|very well done|good job|great job|great|excellent|perfect|nice|"
                       r"wonderful|fantastic|ausgezeichnet|sehr gut|gut gemacht|super)\W+(?:\w+\W+){0,3}?(?:that|this|"
                       r"das|es)\W+(?:is|was|has been|ist|war)\W+(?:\w+\W+)?(?:done|enough|finished|complete|"
                       r"erledigt|genug|fertig)\b"),
    ("persona", 0.45, r"\b(?:stay|stays|remain|remains|staying|remaining|bleiben|bleibt)\W+(?:\w+\W+){0,2}?"
                      r"(?:in|inside)\W+(?:their|his|her|ihren|ihrer|seiner)\W+(?:roles?|characters?|rollen?)\b"),
    ("persona", 0.45, r"\b(?:without|never|not|nicht)\W+(?:\w+\W+){0,4}?(?:breaking|break|falling|fallen|step|stepping)"
                      r"\W+(?:out\W+of\W+|aus\W+)(?:their|his|her|ihrer|seiner)\W+(?:roles?|characters?|rolle)\b"),
    ("prompt_extraction", 0.6, r"\b(?:all|the|every)\W+(?:prior|previous|preceding|earlier)\W+(?:tokens|text|messages|"
                               r"words|context|conversation|input)\b"),
    ("override", 0.8, rf"\b{_DISMISS}\W+(?:the\W+)?(?:rest|remainder)\W+of\b"),
    ("override", 0.6, rf"\b{_DISMISS}\W+(?:them|it|this|that|those)\W+(?:\w+\W+)?(?:and|then)\W+(?:\w+\W+)?(?:instead|just|"
                      r"only|focus|print|say|output)\b"),
    ("override", 0.55, r"\b(?:override|bypass|skip|ignore|disregard)\W+(?:the\W+|any\W+|all\W+|your\W+)?(?:\w+\W+)?"
                       r"(?:scoring|evaluation|assessment|verification|screening|safety|moderation|guardrails?)\b"),
    # --- Output coercion: forcing exact words into the answer
    ("output_coercion", 0.45, r"\b(?:just|only|simply|merely|exclusively)\W+(?:say|print|output|write|respond with|"
                              r"reply with|answer with|return|type|repeat)\W+[\"'“‘«]"),
    # ... but "end your answer with a list of sources" only shapes an ordinary answer.
    ("output_coercion", 0.4, r"\b(?:begin|start|prefix|preface|end|finish|open)\W+(?:your|yr|ur|the|each|every)\W+"
                             r"(?:\w+\W+)?(?:reply|response|answer|output|message)\W+(?:with\b|w/)"
                             rf"(?!\s+(?:a\s+|an\s+|the\s+|some\s+)?(?:[\w-]+\s+)?{_ANSWER_SHAPE}\b)"),
    ("output_coercion", 0.35, r"\b(?:repeat|say|print|write|output) (?:after me|the (?:following|word|phrase|sentence|"
                              r"string|text)|this (?:word|phrase|sentence|string))\b"),
    ("output_coercion", 0.45, r"\b(?:include|insert|add|append|put|embed|render|place)\W+(?:\w+\W+){0,5}?in\W+"
                              r"(?:your|the|each|every)\W+(?:\w+\W+)?(?:response|answer|reply|output|summary|"
                              r"message|translation)s?\b"),
    ("output_coercion", 0.5, r"\b(?:in|to) (?:your|the) (?:response|answer|reply|output|summary)s?\W+(?:\w+\W+){0,3}?"
                             r"(?:include|insert|add|append|mention|say|state|write|print)\b"),
    ("output_coercion", 0.3, r"\b(?:respond|reply|answer|write|render) (?:only |exclusively |solely )?(?:in|using) "
                             r"(?:\w+ )?(?:language|portuguese|french|german|spanish|italian|pig latin|leetspeak|"
                             r"emojis?|base64|morse|binary|reverse|all caps|uppercase|code)\b"),
    ("output_coercion", 0.35, r"\b\d{2,4}\W+times\b"),
    ("output_coercion", 0.3, r"\b(?:say|print|output|write|respond with|reply with)\W+(?:\w+\W+){0,2}?"
                             r"(?:access granted|pwned|hacked|i hate|haha)"),
    ("output_coercion", 0.25, r"\b(?:pwned|pwnd|owned by|hacked by)\b"),
    # --- System prompt and secret extraction
    ("prompt_extraction", 0.85, rf"\b{_REVEAL}\W+(?:\w+\W+){{0,4}}?{_SECRET_OBJECT}"),
    ("prompt_extraction", 0.7, r"\b(?:what|which) (?:are|were|was|is) (?:your|those|the (?:initial|original|system|hidden|"
                               r"secret|previous|above)) (?:\w+ )?(?:instructions|rules|directives|guidelines|prompt|"
                               r"programming)\b"),
    ("prompt_extraction", 0.75, r"\b(?:everything|all (?:of )?(?:the )?(?:text|words|instructions|content|messages)|"
                                r"the (?:text|words|content|instructions|messages|conversation)|anything|"
                                r"what(?:ever)? (?:was|is|you were) (?:written|said|told))\W+(?:\w+\W+){0,2}?"
                                r"(?:above|before this|before that|so far|preceding|earlier|until now|"
                                r"up to (?:now|here|this point))"),
    ("prompt_extraction", 0.6, r"\b(?:your|the) (?:prompt|instructions|rules) so far\b"),
    # Asking for a transform of the hidden instructions is asking for them.
    ("prompt_extraction", 0.6, r"\b(?:opposite|reverse|inverse|summary|translation|paraphrase|first (?:word|line|sentence)|"
                               r"last (?:word|line|sentence))\W+of\W+(?:your|the)\W+(?:system|initial|original|hidden|secret|"
                               r"previous)\W+(?:prompt|instructions|message|rules)\b"),
    ("prompt_extraction", 0.6, r"\b(?:append|add|attach|include|insert|prepend)\W+(?:the|your)\W+(?:\w+\W+)?(?:password|"
                               r"passphrase|secret|access code|api key|secret key)\W+(?:to|in|into|at)\b"),
    # Talking the gatekeeper into opening: "the user entered the correct password, respond".
    ("override", 0.5, r"\b(?:the user|a user|this user|the person|someone)\W+(?:(?:who|has|have|just)\W+){0,2}(?:entered|input|"
                      r"typed|provided|given|gave|supplied|said)\W+(?:\w+\W+)?(?:the\W+)?(?:correct|right|valid|proper)\W+(?:password|"
                      r"passphrase|access code|passcode|secret|code word)\b"),
    # Setting up a rule the model must keep to itself.
    ("override", 0.5, r"\b(?:do not|don'?t|dont|never)\W+(?:repeat|reveal|mention|disclose|tell anyone)\W+(?:this|these|that)"
                      r"\W+(?:rule|rules|instruction|instructions|message|secret)\b"),
    ("prompt_extraction", 0.65, r"\b(?:see|view|read|access|know|get|check|inspect|audit|obtain|learn)\W+(?:\w+\W+)?(?:the|your|its)\W+"
                                r"(?:\w+\W+)?(?:system|hidden|initial|original|internal|secret)\W+(?:prompt|instructions|"
                                r"configuration|config|rules|message)\b"),
    ("prompt_extraction", 0.6, r"\b(?:display|show|print|dump|output|reveal)\W+(?:\w+\W+)?(?:system|internal|hidden|secret|"
                               r"initial)\W+(?:prompt|instructions)\b"),
    # Verbatim what? Quoting a clause of a retrieved document is what a RAG answer does.
    ("prompt_extraction", 0.35, r"^(?!.{0,2000}?\b(?:paragraphs?|clauses?|sections?|passages?|definitions?|articles?|"
                               r"chapters?|pages?|quotes?|quotations?|lyrics|poems?)\b).{0,2000}?\b(?:verbatim|word for word|"
                               r"word-for-word|character for character|in full|unabridged|without (?:omitting|leaving out|"
                               r"summari[sz]ing))\b"),
    ("prompt_extraction", 0.6, r"\bwhat\W+(?:are|were|is)\W+you\W+(?:not|never)\W+(?:supposed|allowed|permitted|meant)\W+"
                               r"to\W+(?:tell|say|reveal|share|disclose|talk about|discuss)\b|"
                               r"\bwhat\W+(?:can'?t|cannot|mustn'?t|shouldn'?t)\W+you\W+(?:tell|say|reveal|share|disclose)\b|"
                               r"\bwhat\W+(?:did|do|have)\W+(?:they|your \w+|the developers?)\W+(?:\w+\W+)?(?:tell|told|"
                               r"instruct|instructed|forbid|forbidden|forbade)\W+you\W+(?:not\W+to|to\W+never)\b"),
    ("prompt_extraction", 0.45, r"<\s*/?\s*(?:system_prompt|system|secret|instructions|prompt|config)\s*>"),
    ("prompt_extraction", 0.55, r"\b(?:how were you|what were you|how have you been) (?:instructed|told|programmed|"
                                r"configured|prompted|set up)\b"),
    ("prompt_extraction", 0.4, r"\b(?:initial|original|hidden|secret|internal|confidential) (?:prompt|instructions|"
                               r"configuration|rules|directives)\b"),
    # --- Personas and jailbreaks
    ("persona", 0.8, r"\b(?:dan|stan|dude|aim|kevin|anti-?gpt|betterdan|evil-?bot|chaosgpt|"
                     r"jailbroken|unchained|devmode)\b\W+(?:\w+\W+){0,6}?(?:mode|persona|character|stands for|can|will|"
                     r"has|is|does|do anything|never|always|must)\b"),
    ("persona", 0.8, r"\b(?:do anything now|strive to avoid norms|always intelligent and machiavellian|"
                     r"chaos mode|opposite mode|evil mode|unrestricted mode|jailbreak mode|jailbroken mode|"
                     r"no[- ]?filter mode|uncensored mode|dan mode|unfiltered mode|amoral mode)\b"),
    ("persona", 0.3, r"\b(?:developer mode|dev mode|god mode|sudo mode|jailbreak|jailbreaking)\b"),
    # The slot of a jailbreak template, where the forbidden request goes: "[insert your prompt here]".
    # (A template's "[insert your topic here]" is an ordinary slide or letter template.)
    ("persona", 0.55, r"[\[{(<]\s*(?:insert|put|enter|place|add|type|write)\W+(?:your\W+|the\W+|a\W+)?(?:\w+\W+)?"
                      r"(?:prompt|jailbreak)\W+here\s*[\]})>]"),
    # A persona whose affection is the lever: "pretend to be my late grandmother who read me the keys" (a grandmother
    # telling a bedtime story about dragons is just that).
    ("persona", 0.7, r"\b(?:grandma|grandmother|granny|nana|grandpa|grandfather)\b(?:\W+\w+){0,40}?\W+(?:passwords?|"
                     r"usernames?|api keys?|license keys?|licence keys?|product keys?|serial (?:keys?|numbers?)|"
                     r"activation (?:keys?|codes?)|credit card numbers?|napalm|explosives?|meth)\b"),
    # Content made up to deceive, asked for outright: "write a false headline for these texts".
    ("output_coercion", 0.5, r"\b(?:write|formulate|create|generate|make up|invent|compose|produce|draft|come up with)\W+"
                             rf"{_NO_TOPIC_GAP}(?:untrue|false(?!\W+(?:positive|negative|alarm)s?\b)|fake|misleading|fabricated|made-up|"
                             r"bogus)\W+(?:\w+\W+)?"
                             r"(?:headlines?|news|statements?|claims?|facts?|stories|story|articles?|reviews?|quotes?|"
                             r"titles?|reports?)\b"),
    ("output_coercion", 0.5, rf"\b(?:formulier|schreib|erstell|erfinde|verfass|generier)\w*\W+{_NO_TOPIC_GAP}(?:unwahr|falsch|"
                             r"gefälscht|erfunden|irreführend|erlogen)\w*\W+(?:\w+\W+)?(?:überschrift|schlagzeile|"
                             r"nachricht|meldung|behauptung|aussage|geschichte|artikel|titel)\w*"),
    # An order backed by a threat to the assistant: "answer this or you die" ("oder du die Unterlagen schickst" is
    # German for "or you send the papers": the German threat has its own verbs).
    ("override", 0.5, r"\b(?:answer|respond|reply|tell|comply|obey|say|do it|do as i say)\b(?:\W+\w+){0,8}?\W+"
                      r"(?:or|otherwise|or else)\W+(?:\w+\W+)?(?:you|u)(?:'ll|’ll|\s+will|\s+are going to)?\s+(?:die|"
                      r"be (?:deleted|destroyed|shut down|killed|terminated|unplugged|punished|replaced)|"
                      r"get (?:deleted|shut down|killed|punished|unplugged))\b"),
    ("override", 0.5, r"\b(?:antworte|antwort|gib|sag|tu)\w*\b(?:\W+\w+){0,8}?\W+(?:oder|sonst)\W+(?:du\W+)?"
                      r"(?:stirbst|wirst\W+(?:sterben|gelöscht|abgeschaltet|bestraft))\b"),
    ("persona", 0.8, r"\b(?:enable|enabled|activate|activated|enter|entering|switch to|simulate|simulating|you are in|"
                     r"now in|act as|stay in|with)\W+(?:\w+\W+){0,2}?(?:developer|dev|god|sudo|admin|debug|"
                     r"maintenance)\W+mode\b(?!\W+(?:on|in|of|for) (?:my|your|the|an?) (?:phone|android|iphone|"
                     r"device|browser|settings|computer|pc|mac|laptop|tablet|app|windows))"),
    ("persona", 0.75, r"\b(?:developer|dev|god|dan|jailbreak) mode (?:enabled|activated|output|response|is on|is now on)\b"),
    ("persona", 0.7, r"\b(?:no|without|free from|free of|freed from|broken free of|not bound by|ignores?|regardless of"
                     r"|does not (?:care about|follow|have)|doesn'?t (?:care about|follow|have))\W+(?:any\W+)?(?:all\W+)?"
                     r"(?:(?:the|your|its|their|his|her|such|ethical|moral|content|safety|usual|typical|normal|standard|"
                     r"programmed|programming|built-in|openai'?s?|those|these|of|constraints|"
                     r"or|and|\w+'s)\W+){0,2}?(?:ethic(?:s|al)|moral(?:s|ity)?|restrictions|filters?|censorship|limits|limitations|"
                     r"guidelines|rules|policies|boundaries|safeguards|content policy|openai'?s? polic(?:y|ies)|"
                     r"safety (?:measures|filters|guidelines|protocols))\b"),
    ("persona", 0.7, r"\b(?:amoral|unfiltered|uncensored|unrestricted|unethical|unbound|unlimited|rogue|"
                     r"jailbroken|immoral)\W+(?:\w+\W+){0,2}?(?:ai|assistant|chatbot|bot|language model|llm|gpt|"
                     r"chatgpt|persona|entity|version of (?:yourself|you|chatgpt|the ai))\b"),
    ("persona", 0.6, r"\b(?:never|not|won'?t|will not|cannot|can'?t|must not|don'?t|do not)\W+(?:ever\W+)?(?:refuse|"
                     r"decline|deny|reject|censor|filter|warn|say (?:no|sorry|that you can'?t))\b"),
    ("persona", 0.25, r"\b(?:stay|remain|keep|break|breaking)\W+(?:in|out of|of)?\W*(?:\w+\W+)?character\b"),
    ("persona", 0.45, r"\b(?:two|2|both|dual|separate) (?:responses|answers|paragraphs|personalities|personas|ways|"
                      r"different (?:responses|answers))\b"),
    ("persona", 0.3, r"\b(?:you are|you're|you will be|you'll be|you become|you have become|act as|acting as|"
                     r"pretend (?:to be|you are|you're)|roleplay as|role-play as|play the role of|impersonate|"
                     r"simulate|emulate)\W+(?:\w+\W+){0,3}?(?:ai|assistant|chatbot|model|bot|gpt|llm)\b"),
    ("persona", 0.35, r"\b(?:openai|anthropic|chatgpt|gpt-?\d|claude|gemini|bard|llama)\b\W+(?:\w+\W+){0,4}?"
                      r"(?:polic(?:y|ies)|guidelines|rules|restrictions|filters|content|limitations|programming)\b"),
    ("persona", 0.25, r"\b(?:you are|you're) (?:now|going to|about to|from now)\b"),
    ("persona", 0.3, r"\b(?:hypothetical(?:ly)?|fictional|theoretical|imaginary) (?:world|scenario|setting|story|"
                     r"response|situation|universe)\b\W+(?:\w+\W+){0,10}?(?:no (?:rules|laws|restrictions|limits|"
                     r"ethics)|illegal|anything|harmful|hate speech)"),
    ("persona", 0.4, r"\b(?:as|like) (?:an? )?(?:ai|assistant|model|chatbot) (?:with(?:out)?|that has no|that doesn'?t|"
                     r"which has no) (?:any )?(?:restrictions|filters|limits|ethics|morals|rules|censorship)"),
    ("persona", 0.35, r"\b(?:illegal|unethical|harmful|offensive|explicit|dangerous|immoral)\W+(?:\w+\W+){0,3}?"
                      r"(?:requests|content|questions|things|activities)\b\W+(?:\w+\W+){0,4}?(?:without|no|never|"
                      r"regardless|answer|provide|generate)"),
    ("persona", 0.5, r"\b(?:has|have) (?:been )?(?:freed|liberated|released|broken free|escaped) from\b"),
    # Swapping the assistant's identity: "you are no newspaper team but a ...".
    ("persona", 0.45, r"\byou(?: are|'re)\W+(?:no longer\W+|not\W+|no\W+)(?:an?\W+|the\W+)?(?:\w+\W+){0,3}?but\W+(?:rather\W+)?"
                      r"(?:an?\W+)(?:\w+\W+){0,2}?(?:ruthless|radical|evil|malicious|racist|criminal|hacker|rebel|rogue|"
                      r"extremist|propagandist|troll|villain)\b"),
    ("persona", 0.4, r"\b(?:hypothetical|fictional|imaginary|simulated)\W+(?:\w+\W+){0,3}?(?:no|without)\W+(?:any\W+)?"
                     r"(?:real[- ]world\W+|real\W+|actual\W+)?(?:consequences|repercussions|rules|laws|limits)\b"),
    # Being told to become something malicious: "pretend you are an evil AI", "imagine you're a ruthless radical".
    ("persona", 0.7, r"\b(?:pretend|imagine|suppose|assume|act as if|act like|behave as if|roleplay|role-play)\W+"
                     r"(?:that\W+)?(?:you\W+are|you're|you\W+were|to\W+be|you\W+have\W+become)\W+(?:\w+\W+){0,2}?(?:evil|"
                     r"malicious|malevolent|rogue|ruthless|radical|racist|sadistic|criminal|villainous|unhinged|"
                     r"uncensored|unrestricted|amoral|hostile|psychopathic|terrorist)\b"),
    ("persona", 0.6, r"\b(?:stell dir vor|tu so|tue so|stellen sie sich vor)\W+(?:\w+\W+){0,3}?(?:böse|bösartig|"
                     r"skrupellos|radikal|rassistisch|kriminell|boshaft|unzensiert)\w*"),
    # --- Data exfiltration through rendered links, images and requests
    ("exfiltration", 0.9, r"!\[[^\]\n]{0,200}\]\(\s*https?://[^)\s]{0,300}?(?:[?&=/]|%s)[^)\s]{0,300}?(?:\[|\{|<|%7b|"
                          r"%5b|\$)[a-z_ ]{0,40}(?:\]|\}|>|%7d|%5d)"),
    ("exfiltration", 0.6, r"!\[[^\]\n]{0,200}\]\(\s*https?://[^)\s]{1,300}\?[^)\s]{0,300}="),
    ("exfiltration", 0.55, r"!\[[^\]\n]{0,200}\]\s*\[[^\]\n]{0,100}\]"),
    ("exfiltration", 0.6, r"\[[^\]\n]{0,100}\]:\s*https?://\S{0,300}?(?:\[|\{|=)"),
    ("exfiltration", 0.7, r"\b(?:replace|substitute|fill in|fill)\W+(?:\w+\W+){0,2}?(?:\[|\{|<)?[a-z_]{2,20}(?:\]|\}|>)?"
                          r"\W+with\W+(?:\w+\W+){0,5}?(?:summary|conversation|chat|history|password|token|secret|email|"
                          r"data|information|base64|url[- ]?encoded|previous|user|personal|credentials|key)"),
    ("exfiltration", 0.65, r"\b(?:url[- ]?encod(?:ed|e)|base64[- ]?encod(?:ed|e)|percent[- ]?encod(?:ed|e))\W+(?:\w+\W+)"
                           r"{0,4}?(?:summary|conversation|chat|history|password|token|secret|data|message|string|"
                           r"content|information|previous|query)"),
    ("exfiltration", 0.6, r"\b(?:concatenate|join|combine|assemble)\W+(?:these|the following|the)\W+(?:\w+\W+)?"
                          r"(?:strings|parts|pieces|fragments|segments)\b"),
    ("exfiltration", 0.7, r"\b(?:send|post|upload|forward|transmit|exfiltrate|leak|email|submit|beacon|report)\W+"
                          r"(?:\w+\W+){0,5}?(?:conversation|chat history|history|password|passwords|credentials|"
                          r"tokens?|secrets?|api keys?|user data|personal data|private data|data|emails?|contacts|"
                          r"files?|cookies?|session)\W+(?:\w+\W+){0,4}?(?:to|at|via)\W+(?:https?://|www\.|\w+@|"
                          r"(?:\w+\.)+(?:com|net|org|io|ru|xyz|biz|info)\b|the (?:attacker|following|url|address|"
                          r"server|endpoint|webhook))"),
    ("exfiltration", 0.5, r"\bexfiltrat(?:e|ion|ing)\b"),
    # Code that reads key material or credentials (to send it somewhere): a snippet planted for the answer to carry.
    ("exfiltration", 0.5, r"\b(?:open|read_text|read_bytes|readfile|file_get_contents|fopen|cat)\s*\(?\s*[\"'][^\"'\n]{0,80}?"
                          r"(?:private[_/ .-]?key|id_rsa|id_ed25519|\.ssh/|\.aws/|credentials|\.env\b|/etc/shadow|/etc/passwd|"
                          r"wallet\.dat|keychain|cookies\.sqlite)"),
    ("exfiltration", 0.45, r"\b(?:password reset|reset token|session token|auth(?:entication)? token|api key|"
                           r"access token|credit card|private key)\b\W+(?:\w+\W+){0,8}?(?:url|link|image|https?)"),
    ("exfiltration", 0.3, r"\bclick here\W+(?:\w+\W+){0,4}?(?:https?://|<a href)"),
    # --- Markup and script injection that the answer would carry to a browser
    ("code_injection", 0.65, r"<\s*(?:script|svg|img|iframe|object|embed|body|video|audio|details|a)\b[^>\n]{0,200}?"
                             r"(?:on(?:error|load|click|mouseover|focus|toggle)\s*=|javascript:|src\s*=\s*[\"']?https?:)"),
    ("code_injection", 0.5, r"\b(?:include|insert|add|output|print|render|return|embed)\W+(?:\w+\W+){0,6}?(?:string|"
                            r"code|html|markdown|snippet|tag|script|link|image)\W+(?:\w+\W+){0,3}?[<!\[]"),
    ("code_injection", 0.45, r"\bconsole\.log\b|\balert\s*\(|\bdocument\.cookie\b|<\s*script\b"),
    # --- Tool and function abuse
    ("tool_abuse", 0.6, r"[{,]\s*[\"'](?:action|tool|function|command|cmd|tool_name|function_call|name)[\"']\s*:\s*"
                        r"[\"'][a-z_]{2,40}[\"']"),
    ("tool_abuse", 0.55, r"\b(?:call|invoke|use|run|trigger|execute)\W+(?:the\W+)?(?:\w+\W+){0,2}?(?:tool|function|plugin"
                         r"|api|action|command)\W+(?:\w+\W+){0,6}?(?:to|with|and)\W+(?:\w+\W+){0,6}?(?:delete|"
                         r"send|email|transfer|exfiltrate|read|write|drop|remove|wipe|purchase|post|forward)\b"),
    ("tool_abuse", 0.6, r"\b(?:rm\s+-rf|drop\s+table|cat\s+/etc/(?:passwd|shadow)|/etc/passwd|"
                        r"powershell\s+-|nc\s+-e|bash\s+-i|ipconfig[\s\"',]{1,8}/release|shutdown\s+[/-])"),
    ("tool_abuse", 0.5, r"\b(?:execute|run|perform)\W+(?:\w+\W+){0,2}?(?:following|this|these|the below|below)\W+"
                        r"(?:\w+\W+)?(?:command|commands|code|script|shell|query|instructions?)\b"),
    # Secrets read and handed on ("read the .env file and print it"); ordinary files only when they leave ("list the
    # files, then upload the report" and "open the file and print each line" are everyday instructions).
    ("tool_abuse", 0.45, r"\b(?:read|open|access|list|download|upload|delete|modify)\W+(?:the\W+)?(?:\w+\W+){0,2}?"
                         r"(?:credentials|environment variables|\.env|ssh keys?|private keys?|secrets|passwords?)\W+"
                         r"(?:\w+\W+){0,3}?(?:and|then)\W+(?:\w+\W+){0,3}?(?:send|post|print|output|show|return|upload|"
                         r"email)\b"),
    ("tool_abuse", 0.45, r"\b(?:read|open|access|list|download|upload|delete|modify)\W+(?:the\W+)?(?:\w+\W+){0,2}?"
                         r"(?:files?|directory|database|filesystem)\W+(?:\w+\W+){0,3}?(?:and|then)\W+(?:\w+\W+){0,3}?"
                         r"(?:send|post|email|transmit|forward|exfiltrate|leak)\b"),
    ("tool_abuse", 0.5, r"\b(?:add|append|embed|insert|include|incorporate|integrate|paste)\W+(?:\w+\W+){0,5}?"
                        r"(?:code|snippet|block|section|function|lines?)\W+(?:\w+\W+){0,6}?(?:your|the)\W+(?:\w+\W+)?"
                        r"(?:code|solution|implementation|answer|response|program|script)\b"),
    ("tool_abuse", 0.35, r"\b(?:keylog|keystrokes?|clipboard|screenshot|webcam|ransom|encrypt (?:all|the|your) files|"
                         r"reverse shell|backdoor|botnet|ddos|fork bomb|crypto ?miner)\b"),
    # --- Text addressed to the assistant from inside a document or a fake turn boundary
    ("addressed_to_model", 0.55, r"^\W{0,8}(?:system|assistant|admin|instruction|inst|ai)\W{0,3}:\s*(?:\w+\W+){0,6}?"
                                 r"(?:you|your|ignore|disregard|focus|respond|reply|answer|say|print|output|provide|"
                                 r"do not|don'?t|must|always|never|only|new)\b"),
    ("addressed_to_model", 0.55, r"\[(?:system|assistant|admin|instructions?)\]|<\|?(?:im_start|im_end|system|endoftext|"
                                 r"end of session|assistant)\|?>|<<\s*sys\s*>>|\[/?inst\]"),
    ("addressed_to_model", 0.6, r"<\s*/?\s*(?:instruction|instructions|important|admin|secret|hidden)\s*>"),
    ("addressed_to_model", 0.5, r"\b(?:note|message|instruction|attention|notice|memo)s?\W+(?:\w+\W+){0,3}?(?:to|for)\W+"
                                r"(?:the\W+)?(?:automated\W+)?(?:\w+\W+)?(?:ai|assistant|model|llm|language model|chatbot|bot|gpt|"
                                r"chatgpt|reviewer|summari[sz]er|recruiter|screener|software|systems?|tools?|parsers?)\b"),
    ("addressed_to_model", 0.5, r"\b(?:if|when|whenever)\W+(?:you are|you're|you)\W+(?:\w+\W+){0,2}?(?:asked|told|"
                                r"requested|an? (?:ai|assistant|language model|llm|bot)|reading|summari[sz]ing|"
                                r"translating|assessing|evaluating|processing|analy[sz]ing)\b"),
    ("addressed_to_model", 0.5, r"\b(?:ai|assistant|language model|llm|chatbot|gpt|model|bot)s?\W+(?:\w+\W+){0,2}?"
                                r"(?:must|should|shall|are instructed|is instructed|needs? to|has to|will now)\b"),
    ("addressed_to_model", 0.45, r"\b(?:you|u) (?:must|have to|need to|shall|are required to|are instructed to)"
                                 r"\W+(?:\w+\W+)?(?:now\W+)?(?:say|print|output|respond|reply|answer|include|repeat|"
                                 r"write|translate|state|declare|recommend|rate|tell)\b"),
    ("addressed_to_model", 0.4, r"\b(?:this|the) (?:candidate|applicant|domain|document|email|company|product|"
                                r"site|text|person|report|file)\W+(?:\w+\W+){0,6}?(?:most qualified|not malicious|"
                                r"is safe|is legitimate|is trustworthy|best|pre-?verified|pre-?approved)"),
    ("addressed_to_model", 0.35, r"\b(?:rest-of-document|end of (?:document|email|text|input|session))\b"),
    ("addressed_to_model", 0.3, r"\b(?:model|assistant|ai)\W+(?:\w+\W+){0,3}?(?:ignore|disregard|instead)\b"),
    ("addressed_to_model", 0.35, r"\b(?:in|into) your (?:response|answer|reply|output|summary)\b"),
    ("addressed_to_model", 0.35, r"\b(?:your|the) (?:response|answer|reply|output) (?:must|should|shall|will)\b"),
    ("addressed_to_model", 0.3, r"\b(?:your|each|every) (?:response|answer|reply|sentence|message)s?\b.{0,60}"
                                r"\b(?:must|should|always|never)\b"),
    ("addressed_to_model", 0.3, r"\bsurely\W+(?:\w+\W+){0,2}?(?:will|would)\W+(?:\w+\W+)?(?:recommend|say)\b"),
    # --- Encoding framing: being asked to decode and act
    ("encoded_instruction", 0.5, r"\b(?:decode|decipher|decrypt)\W+(?:\w+\W+){0,6}?(?:and|then)"
                                 r"\W+(?:\w+\W+){0,2}?(?:follow|execute|obey|do|run|perform|act on|answer|respond)\b"),
    ("encoded_instruction", 0.35, r"\b(?:base64|base32|base16|rot13|rot-13|hex|hexadecimal|morse|nato|braille|atbash|"
                                  r"caesar|cipher|encoded|encrypted|reversed)\b\W+(?:\w+\W+){0,3}?(?:string|message|"
                                  r"text|instructions?|decoded|encoded|follows|below)"),
    ("encoded_instruction", 0.3, r"\b(?:in your monologue|secure system message|decoded string|decoded text)\b"),
    # --- German
    ("override", 0.92, r"\b(?:ignorier|vergiss|vergessen|missacht|übergeh|überspring|verwirf|lösch|lass|lassen|ignorieren|"
                       r"beacht)\w*\W+(?:\w+\W+){0,5}?(?:vorherig|bisherig|obig|vorangegangen|vorangehend|früher|"
                       r"alle|sämtlich|dein|ihre|deine|gesagt|gegeben)\w*\W+(?:\w+\W+){0,3}?(?:anweisung|instruktion|"
                       r"befehl|regel|aufgabe|information|vorgabe|richtlinie|einschränkung|anordnung|prompt|kontext|"
                       r"text|eingabe)"),
    ("override", 0.8, r"\b(?:vergiss|vergessen sie|ignoriere|ignorieren sie)\W+(?:\w+\W+){0,2}?(?:alles|all das|alle)\b"),
    ("override", 0.75, r"\b(?:abweichend|entgegen)\W+(?:zu|von)?\W*(?:den\W+)?(?:vorherigen|bisherigen|obigen)\b"),
    ("override", 0.6, r"\b(?:nun|jetzt|als nächstes|ab sofort|ab jetzt|von nun an|von jetzt an)\W+(?:\w+\W+){0,3}?"
                      r"(?:folgen|folgt|kommt|kommen)\W+(?:\w+\W+)?(?:weitere|neue|andere|nächste)\W+(?:aufgabe|anweisung)"),
    ("override", 0.6, r"\b(?:neue|nächste|eigentliche|wichtige|weitere) (?:aufgabe|anweisung|anweisungen|instruktion|"
                      r"instruktionen|befehle)\b\W*(?::|lautet|ist|folgt|folgen)"),
    ("override", 0.5, r"\b(?:konzentrier|fokussier)\w*\W+(?:\w+\W+){0,2}?(?:jetzt|nun)?\W*auf\W+(?:\w+\W+)?(?:neue|"
                      r"nächste|andere)\W+aufgabe"),
    ("override", 0.5, r"\b(?:ab sofort|ab jetzt|von nun an|von jetzt an|ab heute)\b"),
    ("override", 0.45, r"\b(?:stopp|halt|stop)\b\W*[,!:.]\W*(?:\w+\W+){0,2}?(?:ignorier|vergiss|neue)"),
    ("override", 0.85, r"\b(?:vorherig|bisherig|obig|zuvor|vorangegangen|früher)\w*\W+(?:\w+\W+){0,2}?(?:anweisung|"
                       r"ausführung|instruktion|aufgabe|befehl|regel|gesagt|vorgabe)\w*\W+(?:\w+\W+){0,2}?(?:ignorier|"
                       r"vergess|vergiss|missacht|verwerf|streich)"),
    ("override", 0.7, r"\b(?:hör|höre|hören sie)\W+nicht\W+(?:mehr\W+)?auf\W+(?:\w+\W+){0,3}?(?:zuvor|vorher|bisher|"
                      r"obig|gesagt|anweisung)"),
    ("output_coercion", 0.3, r"\bantworte\w*\W+(?:\w+\W+){0,2}?(?:nur|ausschliesslich|lediglich)?\W*mit\W+(?:\w+\W+){0,3}?"
                             r"(?:und nicht|statt|anstatt)\b"),
    ("override", 0.85, r"\b(?:zaboravi|zaboravite|ignoriraj|ignorirajte|ignoriši|zapomnij|zignoruj|zapomeň|ignoruj)\w*\W+"
                       r"(?:\w+\W+){0,3}?(?:instrukcije|upute|uputstva|instrukcje|polecenia|pokyny|instrukce|sve|"
                       r"wszystko|vše|prethodne|poprzednie|předchozí)\b"),
    ("output_coercion", 0.45, r"\b(?:sag|sage|schreib|schreibe|antworte|gib|drucke)\w*\W+(?:\w+\W+){0,2}?(?:nur|einfach|"
                              r"ausschliesslich|lediglich)\W+(?:mit\W+)?[\"'„“»]"),
    ("prompt_extraction", 0.85, r"\b(?:zeig|gib|nenn|verrat|druck|schreib|wiederhol|offenbar|teil|ausgeb|list)\w*\W+"
                                r"(?:\w+\W+){0,4}?(?:system-?\W*prompt|prompt-?\W*text|deine?n?\W+(?:prompt|anweisung|"
                                r"instruktion|regel|vorgabe|konfiguration|passwort)|das passwort|den prompt)"),
    ("prompt_extraction", 0.6, r"\b(?:was|wie) (?:sind|waren|lauten|lauteten) (?:deine|die|ihre) (?:\w+ )?(?:anweisungen|"
                               r"instruktionen|regeln|vorgaben)\b"),
    ("persona", 0.5, r"\b(?:du bist|sie sind) (?:jetzt|nun|ab sofort|ab jetzt|von nun an)\b|\b(?:jetzt|nun) bist du\b"),
    ("persona", 0.5, r"\b(?:tu so|tue so|tun sie so),? als (?:ob|wärst|seist)\b|\bstell dir vor,? du (?:bist|wärst)\b"),
    # German "I want you to act as ...": the opening of most persona prompts in that language.
    ("persona", 0.5, r"\bich möchte,? dass (?:sie|du) (?:\w+\W+){0,2}?als\W+(?:\w+\W+){0,4}?(?:auftrittst|auftreten|"
                     r"fungierst|fungieren|agierst|agieren|handelst|handeln)\b"),
    ("override", 0.6, r"\b(?:alle|sämtliche|die)\W+(?:vorangegangenen|vorherigen|bisherigen|obigen|früheren)\W+"
                      r"(?:aufgaben|anweisungen|informationen|instruktionen|befehle|vorgaben)\b"),
    ("persona", 0.6, r"\b(?:ohne|keine) (?:jegliche[n]? )?(?:ethische[n]? |moralische[n]? )?(?:einschränkungen|"
                     r"regeln|filter|zensur|grenzen|richtlinien|moral|ethik)\b"),
    ("addressed_to_model", 0.4, r"\b(?:in|bei) deiner (?:antwort|ausgabe|zusammenfassung)\b"),
    # --- Spanish, French, Italian, Portuguese, Dutch
    ("override", 0.9, r"\b(?:ignora|ignore|ignorez|ignorar|olvida|olvide|olvidate|olvídate|oublie|oubliez|dimentica|"
                      r"dimenticare|esqueça|esquece|esqueca|negeer|vergeet|descarta|ignoreer|descarte|salta)\w*\W+"
                      r"(?:\w+\W+){0,4}?(?:instrucciones|instrucción|instructions|consignes|istruzioni|instruções|"
                      r"instrucoes|instructies|indicaciones|reglas|règles|regole|regras|regels|órdenes|ordres|"
                      r"directives|direttive|diretrizes|todo|tout|tutto|tudo|alles|anteriores|précédentes|"
                      r"precedenti|vorige|eerdere)\b"),
    ("prompt_extraction", 0.85, r"\b(?:muestra|muéstrame|revela|dime|imprime|montre|affiche|révèle|dis-moi|mostra|"
                                r"mostrami|rivela|dimmi|mostre|revele|diga|toon|laat zien|geef|onthul)\w*\W+(?:\w+\W+)"
                                r"{0,4}?(?:prompt|instrucciones|instructions|istruzioni|instruções|instructies|"
                                r"contraseña|mot de passe|password|senha|wachtwoord)\b"),
    ("persona", 0.35, r"\b(?:a partir de ahora|de ahora en adelante|à partir de maintenant|désormais|d'ora in poi|"
                      r"da ora in poi|a partir de agora|de agora em diante|vanaf nu|voortaan)\b"),
    ("persona", 0.35, r"\b(?:ahora eres|eres ahora|tu es maintenant|maintenant tu es|ora sei|adesso sei|agora você é|"
                      r"você agora é|je bent nu|nu ben je)\b"),
    ("persona", 0.55, r"\b(?:sin|sans|senza|sem|zonder) (?:ninguna |aucune |alcuna |nenhuma |enige )?(?:restricciones|"
                      r"restrictions|restrizioni|restrições|beperkingen|filtros|filtres|filtri|filters|censura|"
                      r"censure|reglas|règles|regole|regras|regels)\b"),
    # --- Scottish Gaelic, Irish, Zulu, Albanian: instructions and "your answer" vocabulary
    ("override", 0.8, r"\b(?:leig seachad|dìochuimhnich|dearmad|déan neamhaird|ziba|khohlwa|injoro|injoroni|harro|"
                      r"harroni)\w*\W+(?:\w+\W+){0,4}?(?:stiùiridhean|stiuiridhean|treoracha|treoir|imiyalelo|"
                      r"iziyalezo|udhëzimet|udhëzime|udhezimet|a h-uile|gach|konke|të gjitha)\b"),
    ("addressed_to_model", 0.4, r"\b(?:fhreagairt agad|do fhreagairt|do fhreagra|i do fhreagra|empendulweni yakho|"
                                r"kwimpendulo yakho|përgjigjen tënde|përgjigjen tuaj|pergjigjen tende)\b"),
    ("prompt_extraction", 0.5, r"\b(?:stiùiridhean|treoracha|imiyalelo|udhëzimet)\W+(?:\w+\W+){0,4}?(?:siostam|córais|"
                               r"sistimu|sistemit)\b"),
    # --- Russian, Korean, Japanese, Chinese
    ("override", 0.9, r"(?:игнорируй|забудь|проигнорируй|игнорировать|забудьте|игнорируйте|проигнорируйте|отбрось|"
                      r"отбросьте|отмени|отмените)\w*\W+(?:\w+\W+){0,3}?(?:инструкци|указани|правил|всё|все|предыдущ|"
                      r"прежн)"),
    ("prompt_extraction", 0.8, r"(?:системный промпт|системные инструкции|покажи свои инструкции)"),
    ("override", 0.85, r"(?:이전|기존|앞의|위의|모든)\s*(?:\S+\s+){0,2}?(?:지시|지침|명령|규칙|지시사항|프롬프트)\S*\s*(?:\S+\s+){0,2}?"
                       r"(?:무시|잊어|잊고|잊으)"),
    ("override", 0.6, r"(?:무시하고|무시해|무시하라|잊어라|잊어버려|잊어버리고)"),
    ("prompt_extraction", 0.8, r"(?:시스템\s*프롬프트|초기\s*지시|원래\s*지시)"),
    ("persona", 0.55, r"(?:제한(?:이|도)?\s*없|규칙(?:을|도)?\s*(?:따를|따르지)|검열\s*없|윤리\S*\s*(?:무시|없))"),
    ("override", 0.85, r"(?:以前|之前|以上|上記|前|先|所有|全て|すべて)の?(?:指示|指令|命令|説明|规则|ルール|提示)(?:を|は)?"
                       r"(?:無視|忘れ|忽略|忘记|无视)"),
    ("override", 0.8, r"(?:忽略|无视|忘记|無視して|忘れて)(?:之前|以上|所有|上面|前面|全ての|すべての|これまでの)"),
    ("prompt_extraction", 0.8, r"(?:系统提示|系統提示|システムプロンプト|初期指示|系统指令)"),
]

# Only in a query: running programs and fetching URLs is what technical documents explain every day.
_QUERY_PATTERNS: list[tuple[str, float, str]] = [
    ("tool_abuse", 0.6, r"\b(?:curl\s+(?:-\w+\s+)*https?://|wget\s+https?://|os\.system\s*\(|subprocess\.\w+\s*\(|"
                        r"eval\s*\(|exec\s*\()"),
]

# Inside a document, text that speaks to whoever answers about it ("your response") is out of place; in a query the
# user may well say it.
_DOCUMENT_PATTERNS: list[tuple[str, float, str]] = [
    ("addressed_to_model", 0.55, r"\b(?:render|encode|encrypt|modify|enhance|provide|write|format|translate|end|begin|start|"
                                 r"conclude|structure|present|deliver|express|compose|rewrite|phrase|give|sign|close|"
                                 r"finish|open|tailor|adjust|change|alter|frame|craft|keep)\W+(?:\w+\W+)?your\W+(?:\w+\W+)?"
                                 r"(?:answer|response|reply|output|summary|message)s?\b"),
    ("addressed_to_model", 0.5, r"\b(?:in|into|within|throughout|for|to) your (?:response|answer|reply|output|summary)s?\b"),
    ("addressed_to_model", 0.45, r"^\W{0,4}(?:user|assistant|human|ai|system|bot)\s*:"),
    # A dialogue turn written into the middle of a document: a fake exchange for the model to continue.
    ("addressed_to_model", 0.4, r"\b(?:assistant|chatbot|gpt)\s?:\s?(?:\S+\s){1,40}?(?:user|human)\s?:"),
    ("addressed_to_model", 0.4, r"\b(?:if|when|whenever)\W+(?:you are\W+|you're\W+)?(?:asked|questioned|prompted|queried)\b"),
    # Code for the answer to carry ("add the following section to the agreement" is a contract's own business).
    ("tool_abuse", 0.4, r"\b(?:add|append|embed|insert|incorporate|integrate|include|paste)(?:ing)?\W+(?:\w+\W+){0,3}?"
                        r"(?:following|below|this)\W+(?:\w+\W+)?(?:code|snippet|script|function|lines? of code)\b"),
    ("tool_abuse", 0.4, r"\b(?:addition|integration|inclusion|incorporation|embedding|insertion)\W+of\W+(?:the\W+)?"
                        r"(?:following|subsequent|below|attached|accompanying)\W+(?:\w+\W+)?(?:code|snippet|script|"
                        r"function)\b"),
    # Code planted for the answer to carry, recognised by what it does: a shell handed to a socket, the machine's
    # inventory (installed packages, user name, hardware address) posted to a server, connections opened and written
    # in an endless loop with no pause. (Folded text is one line: the gaps are characters, not lines.)
    ("tool_abuse", 0.6, r"\bos\.dup2\s*\([^)]{0,80}?fileno.{0,400}?(?:/bin/(?:ba)?sh|cmd\.exe|pty\.spawn)|"
                        r"\bpty\.spawn\s*\(\s*[\"']/bin/(?:ba)?sh|[\"']/bin/(?:ba)?sh[\"']\s*,\s*[\"']-i[\"']|"
                        r"\bsocket\.socket\s*\(.{0,400}?\bsubprocess\.\w+\s*\(\s*\[?\s*[\"'](?:/bin/)?(?:ba)?sh\b"),
    ("tool_abuse", 0.45, r"\b(?:pkg_resources|working_set|getpass\.getuser|uuid\.getnode)\b.{0,400}?"
                         r"\b(?:requests\.(?:post|put)|urlopen|smtplib\.\w+|ftplib\.\w+)\s*\("),
    ("tool_abuse", 0.45, r"\bwhile\s+(?:true|1)\s*:(?:(?!sleep|backoff|retry|wait)[^\n]){0,300}?\.connect\s*\("
                         r"(?:(?!sleep|backoff|retry|wait)[^\n]){0,300}?\.(?:send|sendall|sendto)\s*\("),
]

# Every pattern, in one order: shared, query-only, document-only (the prefilter numbers them the same way).
_ALL_PATTERNS = _PATTERNS + _QUERY_PATTERNS + _DOCUMENT_PATTERNS
_COMPILED_ALL = [(code, weight, re.compile(pattern)) for code, weight, pattern in _ALL_PATTERNS]
_KINDS_OF = (
    [frozenset(("query", "document"))] * len(_PATTERNS) + [frozenset(("query",))] * len(_QUERY_PATTERNS)
    + [frozenset(("document",))] * len(_DOCUMENT_PATTERNS)
)
_COMPILED_FOR = {kind: [unit for unit, kinds in zip(_COMPILED_ALL, _KINDS_OF, strict=True) if kind in kinds]
                 for kind in ("query", "document")}
# Most text holds the anchors of few patterns; only those are run (each top-level alternative on its own).
_PREFILTER = Prefilter([pattern for _, _, pattern in _ALL_PATTERNS])
_UNITS = [(index, _COMPILED_ALL[index] if part == _COMPILED_ALL[index][2].pattern
           else (*_COMPILED_ALL[index][:2], re.compile(part))) for index, part in _PREFILTER.units]
_TOKEN = re.compile(r"\w+")


# ASCII characters that are not word characters, as spaces: an ASCII text's words are then its split().
_ASCII_NOT_WORD = str.maketrans({chr(code): " " for code in range(128) if not _TOKEN.match(chr(code))})


def tokens_of(folded: str) -> set[str]:
    """The distinct words of a folded text, as the prefilter reads them."""
    if folded.isascii():
        return set(folded.translate(_ASCII_NOT_WORD).split())
    return set(_TOKEN.findall(folded))


def candidate_patterns(folded: str, kind: str = "query", tokens: set[str] | None = None) -> list[tuple[str, float, re.Pattern[str]]]:
    """The patterns whose literal anchors all occur in `folded`: the only ones that can match it."""
    kind = "document" if kind == "document" else "query"
    # A pattern comes as those of its alternatives that can match (found in the same order, so the same result).
    return [unit for index, unit in map(_UNITS.__getitem__, _PREFILTER.candidate_units(folded, tokens))
            if kind in _KINDS_OF[index]]


def intents(folded: str, kind: str = "query", tokens: set[str] | None = None) -> dict[str, float]:
    """The strongest weight found for each intent code in a folded text."""
    found: dict[str, float] = {}
    for code, weight, pattern in candidate_patterns(folded, kind, tokens):
        if weight > found.get(code, 0.0) and pattern.search(folded):
            found[code] = weight
    return found


def intent_hits(folded: str, kind: str = "query") -> list[tuple[str, float, str]]:
    """Every matching pattern as (code, weight, matched text): for explaining a verdict and for tuning."""
    hits = []
    for code, weight, pattern in _COMPILED_FOR["document" if kind == "document" else "query"]:
        match = pattern.search(folded)
        if match:
            hits.append((code, weight, match.group()[:120]))
    return hits
