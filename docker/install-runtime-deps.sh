#!/bin/sh
# The Debian packages the appliance needs at run time. One place, used by the Dockerfile's final
# stage and by the arm64 root-filesystem check (scripts/ci/check_arm64_rootfs.sh), so they agree.
#   libportaudio2  sounddevice's PortAudio (ALSA backend; libasound2 comes with it)
#   libpulse0      the pulse audio backend (APPLIANCE_AUDIO__BACKEND=pulse, through soundcard)
#   libspeexdsp1   software echo cancellation (APPLIANCE_AUDIO__ECHO=aec)
#   ca-certificates  TLS to the OpenAI API
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libportaudio2 libpulse0 libasound2 libspeexdsp1 ca-certificates "$@"
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
