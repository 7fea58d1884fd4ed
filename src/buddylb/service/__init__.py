"""How buddylb lives under a service manager: sd_notify, privilege drop (issue 17)."""
