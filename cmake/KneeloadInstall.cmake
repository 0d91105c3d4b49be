# Install rules: `cmake --install BUILD [--prefix P]` (DESTDIR honoured). README, "Install as a
# service", is the user's guide; tests/deploy/deploy_test.py checks the layout.
#
#   P/bin/kneeloadd, P/bin/kneeloadctl
#   P/lib/systemd/system/kneeloadd.service   ExecStart and Documentation point into P
#   P/lib/sysusers.d/kneeload.conf           the kneeload system user
#   /etc/kneeload/kneeloadd.toml.example     always refreshed
#   /etc/kneeload/kneeloadd.toml             only if absent: an operator's config is never overwritten
#   P/share/doc/kneeload/                    README, design notes, annotated example config
#   P/share/kneeload/{prometheus,grafana}/   scrape config, alert rules, dashboards (the
#                                            Grafana provider's path points into P)
#
# systemd directories are lib/... under the prefix, not GNUInstallDirs' LIBDIR (which is
# lib/<multiarch> on Debian): systemd searches /usr/lib and /usr/local/lib. The config lives
# in /etc/kneeload whatever the prefix, because the unit's ConfigurationDirectory= is always
# under /etc.
include(GNUInstallDirs)

install(TARGETS kneeloadd kneeloadctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# kneeload_install_for_prefix(SRC DESTINATION): installs SRC, a file written for prefix /usr,
# with its /usr/bin/kneeloadd and /usr/share/... paths rewritten to the prefix. The rewrite runs
# when the install runs, not when CMake configures, so `cmake --install --prefix P` (which
# overrides the configured prefix) yields a unit that starts the binary it just installed.
function(kneeload_install_for_prefix src destination)
  get_filename_component(_name ${src} NAME)
  set(_out ${PROJECT_BINARY_DIR}/install/${destination}/${_name})
  install(CODE "
    file(READ \"${src}\" _text)
    string(REPLACE \"/usr/bin/kneeloadd\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/kneeloadd\" _text \"\${_text}\")
    string(REPLACE \"/usr/share/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATAROOTDIR}/\" _text \"\${_text}\")
    file(WRITE \"${_out}\" \"\${_text}\")
  ")
  install(FILES ${_out} DESTINATION ${destination})
endfunction()

kneeload_install_for_prefix(${PROJECT_SOURCE_DIR}/systemd/kneeloadd.service lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/kneeload.sysusers DESTINATION lib/sysusers.d RENAME kneeload.conf)

set(_example ${PROJECT_SOURCE_DIR}/deploy/config/kneeloadd.example.toml)
install(FILES ${_example} DESTINATION /etc/kneeload RENAME kneeloadd.toml.example)
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}/etc/kneeload/kneeloadd.toml\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}/etc/kneeload/kneeloadd.toml (the new example is kneeloadd.toml.example)\")
  else()
    file(INSTALL \"${_example}\" DESTINATION /etc/kneeload RENAME kneeloadd.toml)
  endif()
")

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/model-conventions.md ${_example}
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES
    ${PROJECT_SOURCE_DIR}/deploy/prometheus/prometheus.yml
    ${PROJECT_SOURCE_DIR}/deploy/prometheus/rules.yml
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kneeload/prometheus)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/grafana/provisioning/datasources/kneeload.yml
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kneeload/grafana/provisioning/datasources)
# Its dashboards path names where they are installed, so it is rewritten like the unit.
kneeload_install_for_prefix(${PROJECT_SOURCE_DIR}/deploy/grafana/provisioning/dashboards/kneeload.yml
  ${CMAKE_INSTALL_DATADIR}/kneeload/grafana/provisioning/dashboards)
install(FILES
    ${PROJECT_SOURCE_DIR}/deploy/grafana/dashboards/kneeload-operations.json
    ${PROJECT_SOURCE_DIR}/deploy/grafana/dashboards/kneeload-floor.json
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kneeload/grafana/dashboards)
